"""Leave-one-city-out assets: in-process runs of loco_job and evaluation_report_job on three small simulated
cities, one hour, a tiny budget; the report has the Data row and every method x seed, finite headline
metrics, and each partition's rows are those of the library driver (appshot evaluate) on the same world."""

from pathlib import Path

import numpy as np
import pytest
from dagster import DagsterInstance

from appshot_model.core.errors import AppshotInputError
from appshot_model.evaluation.loco import ROW_COLUMNS, Fold, run_loco
from appshot_model.evaluation.metrics import HEADLINE_METRICS
from appshot_model.evaluation.report import compare_scores, read_scores
from appshot_model.evaluation.worlds import demo_world
from appshot_model.traffic.demo import small_demo_city
from assets.resources import AppshotSettings, EvaluationSettings
from pipelines.definitions import build_definitions
from pipelines.demo_run import evaluation_plan, run_plan

CITIES = [small_demo_city("alpha", 20, 22), small_demo_city("beta", 24, 20, seed_offset=1),
          small_demo_city("gamma", 22, 22, seed_offset=2)]
EVALUATION = EvaluationSettings(methods=["appshot", "fdas", "cnn"], seeds=[0, 1], steps=2, batch_size=4, features=4,
                                samples=4, nemd_max_pairs=2, workers=2)


def _definitions(data_dir: Path):
    return build_definitions(cities=CITIES, hours=["morning"],
                             settings=AppshotSettings(seed=5, days=14, data_dir=str(data_dir)), evaluation=EVALUATION)


@pytest.mark.slow
def test_loco_report_has_data_row_every_method_and_seed_and_matches_the_driver(tmp_path):
    defs = _definitions(tmp_path)
    with DagsterInstance.ephemeral() as instance:
        run_ids = run_plan(defs, instance, evaluation_plan(defs, ["alpha", "beta"], ["morning"]))
        assert all(instance.get_run_by_id(r).is_success for r in run_ids)
    out = tmp_path / "evaluation"
    rows = read_scores(out / "demo_loco.csv", ROW_COLUMNS)
    assert list(rows["method"]) == ["data", "appshot", "appshot", "fdas", "fdas", "cnn", "cnn"] * 2
    assert list(rows["held_out"]) == ["alpha"] * 7 + ["beta"] * 7
    assert np.isfinite(rows[list(HEADLINE_METRICS)].to_numpy(float)).all()
    summary = (out / "demo_loco.md").read_text()
    assert "## morning" in summary and " ± " in summary
    for name in ("maps", "stochasticity", "share_errors"):
        assert (tmp_path / "figures" / "evaluation" / "alpha_morning" / f"{name}.png").stat().st_size > 0
    # the same world and settings through the library driver give the same rows bit for bit
    world = demo_world(CITIES, seed=5, days=14, hours=["morning"])
    direct = run_loco(world, EVALUATION.loco_settings(AppshotSettings().spearman_threshold), [Fold("beta", "morning")],
                      workers=1)
    assert compare_scores(direct.rows, rows, ROW_COLUMNS[:5], HEADLINE_METRICS) == []
    assert len(direct.rows) == 7


def test_evaluation_plan_rejects_unknown_city_and_hour(tmp_path):
    defs = _definitions(tmp_path)
    with pytest.raises(AppshotInputError, match="unknown city \\['paris'\\]"):
        evaluation_plan(defs, ["paris"], None)
    with pytest.raises(AppshotInputError, match="unknown hour \\['night'\\]"):
        evaluation_plan(defs, None, ["night"])
    plan = evaluation_plan(defs, ["gamma"], None)
    assert ("loco_job", "gamma|morning") in plan and plan[-1] == ("evaluation_report_job", None)
    assert sum(job == "loco_job" for job, _ in plan) == 1
