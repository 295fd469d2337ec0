"""The privacy gate in the pipeline: a model made to memorise the two training days of a tiny city
is blocked before release (naming the city x hour and why), while a normally trained one passes and
is released with its figures in the card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import DagsterInstance

from appshot_model.release import list_releases
from appshot_model.traffic.demo import small_demo_city
from assets.privacy import audit_markdown
from assets.resources import AppshotSettings
from pipelines.definitions import build_definitions
from pipelines.demo_run import demo_plan, run_plan

#: L1 only, no channel dropout, a high learning rate and many steps: the generator is pulled onto the
#: two member days of a 12 x 12 city (docs/privacy.md). Without the noise calibration: with it (z rescaled to
#: the real day-to-day spread, output levels reset) this model passed the gate; the test is about the gate
#: blocking a generator that sits on its member days, which calibration is not meant to prevent.
MEMORISE = """\
model:
  features: 16
  use_d1: false
  use_d2: false
  channel_dropout: 0.0
  calibrate_noise: false
train:
  steps: 800
  batch_size: 16
  lr_g: 0.003
"""
NORMAL = """\
model:
  features: 8
train:
  steps: 150
  batch_size: 16
"""


def _release_run(tmp_path: Path, config: str, holdout_fraction: float):
    (tmp_path / "run.yaml").write_text(config)
    settings = AppshotSettings(seed=1, days=28, n_samples=6, config_file=str(tmp_path / "run.yaml"),
                               data_dir=str(tmp_path / "data"), privacy_holdout_fraction=holdout_fraction)
    defs = build_definitions(cities=[small_demo_city("tiny", 12, 12)], hours=["morning"], settings=settings)
    with DagsterInstance.ephemeral() as instance:
        run_plan(defs, instance, [step for step in demo_plan(defs) if step[0] != "release_job"])
        result = defs.resolve_job_def("release_job").execute_in_process(instance=instance, raise_on_error=False)
    audit = json.loads((tmp_path / "data" / "assets" / "privacy_audit.json").read_text())
    print(f"\nprivacy audit (holdout fraction {holdout_fraction}):\n{audit_markdown(audit)}")  # docs/privacy.md
    return result


@pytest.mark.slow
def test_gate_blocks_a_memorising_model(tmp_path):
    result = _release_run(tmp_path, MEMORISE, holdout_fraction=0.9)  # 2 member days, 18 held out
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "privacy_gate" and not evaluation.passed
    assert evaluation.description.startswith("tiny x morning: ")
    assert "membership-inference attack tells training days from held-out days" in evaluation.description
    assert not result.success and result.asset_materializations_for_node("release") == []
    assert list_releases(tmp_path / "data" / "releases") == []
    [audit] = json.loads((tmp_path / "data" / "assets" / "privacy_audit.json").read_text())
    assert (audit["members"], audit["non_members"], audit["status"]) == (2, 18, "blocked")
    assert audit["attack_auc"] == 1.0


@pytest.mark.slow
def test_gate_passes_a_normally_trained_model(tmp_path):
    result = _release_run(tmp_path, NORMAL, holdout_fraction=0.25)  # 15 member days, 5 held out
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed and result.success
    [release] = list_releases(tmp_path / "data" / "releases")
    [part] = json.loads((release / "card.json").read_text())["parts"]
    assert (part["privacy"]["members"], part["privacy"]["held_out"], part["privacy"]["status"]) == (15, 5, "pass")
    # the card carries the measured figures; with 15 members and 5 held-out days an AUC near 0.8 can occur by
    # chance, which is why the gate also asks for a significant p-value (PrivacyThresholds.alpha)
    privacy = part["privacy"]
    assert privacy["dcr_ratio"] > 0.5 and (privacy["attack_auc"] <= 0.8 or privacy["attack_p_value"] >= 0.01)
    assert "## Privacy" in (release / "card.md").read_text()
