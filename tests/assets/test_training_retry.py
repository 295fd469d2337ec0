"""Dagster retries a training that fails mid-way (the APPSHOT_FAIL_AFTER_CHECKPOINT hook raises once after the
checkpoint at step 10): the retry resumes from that checkpoint and ends with the weights of an uninterrupted
training (same seed, CPU)."""

from __future__ import annotations

import shutil

import pytest
import torch
from dagster import DagsterEventType, DagsterInstance

from appshot_model.model.checkpoint import FAIL_AFTER_ENV
from appshot_model.traffic.demo import small_demo_city
from assets.resources import AppshotSettings
from pipelines.definitions import build_definitions
from pipelines.demo_run import demo_plan, run_plan

RUN_CONFIG = """\
model:
  features: 4
  disc_features: 4
train:
  steps: 20
  batch_size: 4
  bn_batches: 2
"""


def _train(defs, instance):
    result = defs.resolve_job_def("training_job").execute_in_process(instance=instance, partition_key="morning")
    return result, result.output_for_node("trained_model")


@pytest.mark.usefixtures("one_torch_thread")
def test_a_failed_training_is_retried_and_resumes_to_the_uninterrupted_model(tmp_path, monkeypatch):
    (tmp_path / "run.yaml").write_text(RUN_CONFIG)
    settings = AppshotSettings(seed=2, days=7, n_samples=1, config_file=str(tmp_path / "run.yaml"),
                               data_dir=str(tmp_path / "data"), checkpoint_every=5, progress_bars=False)
    defs = build_definitions(cities=[small_demo_city("tiny", 12, 12)], hours=["morning"], settings=settings)
    checkpoints = tmp_path / "data" / "checkpoints"
    with DagsterInstance.ephemeral() as instance:
        upstream = [step for step in demo_plan(defs) if step[0] not in ("training_job", "generation_job",
                                                                           "release_job")]
        run_plan(defs, instance, upstream, quiet=True)
        monkeypatch.setenv(FAIL_AFTER_ENV, "10")
        retried, resumed = _train(defs, instance)
        monkeypatch.delenv(FAIL_AFTER_ENV)
        events = [e.event_type for e in retried.all_events if e.step_key == "trained_model"]
        assert events.count(DagsterEventType.STEP_UP_FOR_RETRY) == 1 and retried.success
        failure = next(e for e in retried.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY)
        assert "injected failure after the checkpoint at step 10" in str(failure.event_specific_data.error)
        logs = [r.user_message for r in instance.all_logs(retried.run_id) if r.user_message]
        assert any("resuming from the checkpoint at step 10/20" in m for m in logs)
        shutil.rmtree(checkpoints)  # no checkpoint: the next training runs from step 0 uninterrupted
        again, uninterrupted = _train(defs, instance)
        assert DagsterEventType.STEP_UP_FOR_RETRY not in [e.event_type for e in again.all_events]
    assert len(resumed.history["g_l1"]) == 20
    for (name, a), b in zip(resumed.generator.state_dict().items(), uninterrupted.generator.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    assert resumed.model_hash == uninterrupted.model_hash
