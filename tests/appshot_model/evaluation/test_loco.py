"""Leave-one-city-out driver on a tiny simulated world (three small cities, two hours, tiny budgets): one row
per fold x method x seed with the committed columns, rows independent of the worker count and of which
other folds / methods / seeds ran, outputs written and read back exactly, clear errors for bad arguments."""

import json

import numpy as np
import pandas as pd
import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.evaluation.loco import (DETAIL_COLUMNS, ROW_COLUMNS, Fold, LocoSettings, LocoTaskError, merge_runs,
                                           method_seeds, plan_folds, run_loco, write_loco)
from appshot_model.evaluation.metrics import HEADLINE_METRICS
from appshot_model.evaluation.report import compare_scores, read_scores
from appshot_model.evaluation.worlds import ArrayWorld, demo_world
from appshot_model.traffic.demo import small_demo_city

CITIES = [small_demo_city("alpha", 20, 22), small_demo_city("beta", 24, 20, seed_offset=1),
          small_demo_city("gamma", 22, 22, seed_offset=2)]
TINY = {"steps": 2, "batch_size": 4, "features": 4, "samples": 3, "nemd_pairs": 2}
SETTINGS = LocoSettings(methods=("appshot", "fdas", "cnn"), seeds=(0, 1), **TINY)
KEYS = ["world", "held_out", "hour", "method", "seed"]


@pytest.fixture(scope="module")
def world():
    return demo_world(CITIES, seed=5, days=14, hours=["morning", "evening"])


@pytest.fixture(scope="module")
def full_run(world):
    return run_loco(world, SETTINGS, workers=2)


def test_one_row_per_fold_method_seed_with_the_committed_columns(world, full_run):
    rows = full_run.rows
    assert list(full_run.scores.columns) == list(ROW_COLUMNS)
    assert list(rows.columns) == [*ROW_COLUMNS, *DETAIL_COLUMNS]
    folds = plan_folds(world)
    assert [f.key for f in folds] == ["alpha|morning", "beta|morning", "gamma|morning",
                                      "alpha|evening", "beta|evening", "gamma|evening"]
    assert len(rows) == len(folds) * (1 + 3 * 2)
    assert not rows.duplicated(KEYS).any()
    data = rows[rows["method"] == "data"]
    assert len(data) == len(folds) and data["seed"].isna().all()
    methods = rows[rows["method"] != "data"]
    assert set(methods["seed"]) == {0, 1} and (methods.groupby(["held_out", "hour"]).size() == 6).all()
    assert np.isfinite(rows[list(HEADLINE_METRICS)].to_numpy(float)).all()
    assert (rows["world"] == "demo").all()
    # the Data reference (two halves of the real days) beats i.i.d. FDaS on spatial structure in every fold
    by_fold = rows.set_index(["held_out", "hour", "method"]).sort_index()
    for fold in folds:
        ref = by_fold.loc[(fold.held_out, fold.hour, "data")]
        fdas = by_fold.loc[(fold.held_out, fold.hour, "fdas")]
        assert (ref["ssim"] > fdas["ssim"]).all() and (ref["nemd"] < fdas["nemd"]).all()
    # seeds differ (they are different trainings), and a task's seeds depend only on its own fold/method/seed
    appshot = methods[methods["method"] == "appshot"].set_index(["held_out", "hour", "seed"])["werr"]
    assert appshot.xs(0, level="seed").ne(appshot.xs(1, level="seed")).any()
    assert method_seeds("demo", Fold("beta", "evening"), "cnn", 1) != method_seeds("demo", Fold("beta", "evening"),
                                                                                    "cnn", 0)
    assert full_run.record["settings"]["torch_threads"] == 1 and full_run.record["code"]["appshot_model_sha256"]
    numerics = full_run.record["numerics"]
    assert numerics["cpu"] and numerics["torch_cpu_capability"] and numerics["libraries"]["torch"].startswith("2.")


def test_a_fold_rerun_alone_on_one_worker_reproduces_its_rows(world, full_run):
    alone = run_loco(world, LocoSettings(methods=("appshot",), seeds=(1,), **TINY), [Fold("beta", "evening")],
                     workers=1)
    assert len(alone.rows) == 2  # the Data row and appshot seed 1
    assert compare_scores(alone.rows, full_run.rows, KEYS, [*HEADLINE_METRICS, "pairwise_ssim_error",
                                                           "share_error"]) == []
    other = run_loco(world, LocoSettings(methods=("cnn", "fdas"), seeds=(1, 0), **TINY),
                     [Fold("gamma", "morning"), Fold("alpha", "evening")], workers=1)
    assert compare_scores(other.rows, full_run.rows, KEYS, HEADLINE_METRICS) == []
    changed = other.rows.copy()
    changed.loc[changed["method"] == "cnn", "ssim"] = np.nextafter(changed.loc[changed["method"] == "cnn", "ssim"], 2)
    problems = compare_scores(changed, full_run.rows, KEYS, HEADLINE_METRICS)
    assert len(problems) == 4 and all("method=cnn" in p and "ssim" in p and "!= reference" in p for p in problems)
    assert compare_scores(changed.assign(world="other"), full_run.rows, KEYS, ["werr"])[0].endswith(
        "no such row in the reference")


def test_outputs_are_written_atomically_and_read_back_exactly(world, full_run, tmp_path):
    paths = write_loco(full_run, tmp_path / "tiny_loco.csv", world)
    scores = read_scores(paths["scores"], ROW_COLUMNS)
    assert compare_scores(scores, full_run.rows, KEYS, HEADLINE_METRICS) == []
    assert compare_scores(full_run.rows, scores, KEYS, HEADLINE_METRICS) == []
    text = paths["scores"].read_text().splitlines()
    assert text[0] == ",".join(ROW_COLUMNS) and text[1].startswith("demo,alpha,morning,data,,")
    details = read_scores(paths["details"])
    pd.testing.assert_frame_equal(details, full_run.rows.reset_index(drop=True), check_dtype=False)
    record = json.loads(paths["record"].read_text())
    assert record["settings"]["seeds"] == [0, 1] and record["steps_per_model"] == {"appshot": 2, "fdas": 0, "cnn": 2}
    assert record["code"]["appshot_model_sha256"] == full_run.record["code"]["appshot_model_sha256"]
    summary = paths["summary"].read_text()
    assert "## morning" in summary and " ± " in summary and "Seconds per row" in summary
    figures = sorted(p.name for p in paths["figures"].iterdir())
    assert "stochasticity_beta_evening.png" in figures and "metrics_morning.png" in figures
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_runs_of_single_seeds_merge_into_the_run_of_both(world, full_run, tmp_path):
    parts = []
    for seed in (1, 0):
        run = run_loco(world, LocoSettings(methods=SETTINGS.methods, seeds=(seed,), **TINY), workers=2)
        parts.append(write_loco(run, tmp_path / f"seed{seed}.csv", figures=False)["scores"])
    merged = merge_runs(parts)
    pd.testing.assert_frame_equal(merged.scores, full_run.scores, check_dtype=False)
    assert merged.record["settings"]["seeds"] == [0, 1] and len(merged.record["parts"]) == 2
    walls = [p["wall_seconds"] for p in merged.record["parts"]]
    assert merged.record["wall_seconds"] == pytest.approx(sum(walls), abs=0.2)
    summary = write_loco(merged, tmp_path / "merged.csv")["summary"].read_text()
    assert "part `seed1.csv`: seeds [1]" in summary and "part `seed0.csv`: seeds [0]" in summary
    assert (tmp_path / "merged_figures" / "metrics_evening.png").is_file()

    with pytest.raises(AppshotInputError, match="appear in more than one part"):
        merge_runs([parts[0], parts[0]])
    with pytest.raises(AppshotInputError, match="at least two runs"):
        merge_runs(parts[:1])
    record_file = tmp_path / "seed0_run.json"
    record = json.loads(record_file.read_text())
    record["settings"]["samples"] = 99
    record_file.write_text(json.dumps(record))
    with pytest.raises(AppshotInputError, match="settings is .*samples"):
        merge_runs(parts)
    details = tmp_path / "seed1_details.csv"
    details.unlink()
    with pytest.raises(AppshotInputError, match="seed1_details.csv does not exist"):
        merge_runs(parts)


def test_bad_arguments_give_clear_errors(world):
    with pytest.raises(AppshotInputError, match="unknown method 'gan'"):
        LocoSettings(methods=("gan",))
    with pytest.raises(AppshotInputError, match="seeds must be distinct"):
        LocoSettings(seeds=(1, 1))
    with pytest.raises(AppshotInputError, match="samples must be >= 2"):
        LocoSettings(samples=1)
    with pytest.raises(AppshotInputError, match="steps must be >= 1"):
        LocoSettings(steps=0)
    with pytest.raises(AppshotInputError, match="nemd_method"):
        LocoSettings(nemd_method="approximate")
    with pytest.raises(AppshotInputError, match=r"unknown city \['paris'\] in world demo; expected some of"):
        plan_folds(world, ["paris"])
    with pytest.raises(AppshotInputError, match=r"unknown hour \['night'\]"):
        plan_folds(world, None, ["night"])
    with pytest.raises(AppshotInputError, match="workers must be >= 1"):
        run_loco(world, SETTINGS, [Fold("alpha", "morning")], workers=0)
    with pytest.raises(AppshotInputError, match="not held-out city|hour pairs"):
        run_loco(world, SETTINGS, [Fold("alpha", "midday")], workers=1)
    peaks = {key: value for key, value in world.peaks.items() if key != ("beta", "evening")}
    with pytest.raises(AppshotInputError, match=r"no peak snapshots for \['beta\|evening'\]"):
        ArrayWorld("demo", world.contexts, peaks)


def test_a_failing_task_stops_the_run_with_its_fold_method_and_seed(world):
    contexts = dict(world.contexts)
    contexts["gamma"] = contexts["gamma"].copy(data=np.full(contexts["gamma"].shape, np.nan, np.float32))
    broken = ArrayWorld("demo", contexts, world.peaks)
    with pytest.raises(LocoTaskError, match=r"demo alpha\|morning: (fold preparation|cnn seed 0) failed: "):
        run_loco(broken, LocoSettings(methods=("cnn",), seeds=(0,), **TINY), [Fold("alpha", "morning")], workers=1)


def test_aliases_are_not_trained_twice():
    assert LocoSettings(methods=("appshot", "appshot_l1_d1_d2", "appshot_kernel_3", "cnn")).methods == ("appshot", "cnn")
    assert LocoSettings(methods=("appshot_kernel_3",)).methods == ("appshot_kernel_3",)
