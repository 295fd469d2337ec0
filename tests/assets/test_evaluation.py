"""Leave-one-city-out assets: in-process runs of loco_job and evaluation_report_job on three small
simulated cities, one hour, a tiny budget; the report has the Data row and every method, finite
headline metrics, and is identical when rerun with the same seeds."""

from pathlib import Path

import numpy as np
import pytest
from dagster import DagsterInstance

from appshot_model.core.errors import AppshotInputError
from appshot_model.evaluation.metrics import HEADLINE_METRICS
from appshot_model.evaluation.report import read_results
from appshot_model.traffic.demo import small_demo_city
from assets.resources import AppshotSettings, EvaluationSettings
from pipelines.definitions import build_definitions
from pipelines.demo_run import evaluation_plan, run_plan

CITIES = [small_demo_city("alpha", 20, 22), small_demo_city("beta", 24, 20, seed_offset=1),
          small_demo_city("gamma", 22, 22, seed_offset=2)]


def _definitions(data_dir: Path):
    return build_definitions(cities=CITIES, hours=["morning"],
                             settings=AppshotSettings(seed=5, days=14, data_dir=str(data_dir)),
                             evaluation=EvaluationSettings(methods=["appshot", "fdas", "cnn"], steps=3, samples=4,
                                                           nemd_max_pairs=2))


def _evaluate(data_dir: Path, cities: list[str]) -> Path:
    defs = _definitions(data_dir)
    with DagsterInstance.ephemeral() as instance:
        run_ids = run_plan(defs, instance, evaluation_plan(defs, cities, ["morning"]))
        assert all(instance.get_run_by_id(r).is_success for r in run_ids)
    return data_dir / "evaluation"


@pytest.mark.slow
def test_loco_report_has_data_row_every_method_and_reproduces(tmp_path):
    out = _evaluate(tmp_path / "first", ["alpha", "beta"])
    table = read_results(out / "results.csv")
    assert list(table.loc["morning"].index) == ["data", "appshot", "fdas", "cnn"]
    assert (table["n_cities"] == 2).all()
    assert np.isfinite(table[list(HEADLINE_METRICS)].to_numpy()).all()
    data, fdas = table.loc[("morning", "data")], table.loc[("morning", "fdas")]
    assert data["ssim"] > fdas["ssim"] and data["nemd"] < fdas["nemd"]  # i.i.d. noise has no spatial structure
    assert "## morning" in (out / "results.md").read_text()
    per_city = (out / "per_city.csv").read_text()
    assert "alpha" in per_city and "beta" in per_city and "gamma" not in per_city
    for name in ("maps", "stochasticity", "share_errors"):
        assert (tmp_path / "first" / "figures" / "evaluation" / "alpha_morning" / f"{name}.png").stat().st_size > 0
    again = _evaluate(tmp_path / "second", ["alpha", "beta"])
    assert (out / "results.csv").read_bytes() == (again / "results.csv").read_bytes()


def test_evaluation_plan_rejects_unknown_city_and_hour(tmp_path):
    defs = _definitions(tmp_path)
    with pytest.raises(AppshotInputError, match="unknown city \\['paris'\\]"):
        evaluation_plan(defs, ["paris"], None)
    with pytest.raises(AppshotInputError, match="unknown hour \\['night'\\]"):
        evaluation_plan(defs, None, ["night"])
    plan = evaluation_plan(defs, ["gamma"], None)
    assert ("loco_job", "gamma|morning") in plan and plan[-1] == ("evaluation_report_job", None)
    assert sum(job == "loco_job" for job, _ in plan) == 1
