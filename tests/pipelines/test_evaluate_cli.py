"""`appshot evaluate` on a tiny simulated world: writes the scores, reruns one fold x method x seed alone and
checks it against the first run's CSV bit for bit, reports differing settings, rejects bad arguments cleanly."""

import json

import pytest
from typer.testing import CliRunner

from appshot_model.evaluation.loco import ROW_COLUMNS
from appshot_model.evaluation.report import read_scores
from appshot_model.evaluation.worlds import demo_world
from appshot_model.traffic.demo import small_demo_city
from pipelines import cli

runner = CliRunner()
CITIES = [small_demo_city("alpha", 20, 22), small_demo_city("beta", 24, 20, seed_offset=1),
          small_demo_city("gamma", 22, 22, seed_offset=2)]
TINY = ["--samples", "3", "--steps", "2", "--nemd-pairs", "2", "--no-figures"]


@pytest.fixture
def tiny_world(monkeypatch):
    monkeypatch.setitem(cli.WORLDS, "demo", lambda seed, root: demo_world(CITIES, seed=seed, days=14, hours=["morning"]))


def test_evaluate_writes_scores_and_a_rerun_fold_reproduces_its_rows(tiny_world, tmp_path):
    committed = tmp_path / "committed" / "demo_loco.csv"
    full = runner.invoke(cli.app, ["evaluate", "--out", str(committed), "--method", "cnn", "--method", "fdas",
                                   "--seeds", "2", "--workers", "2", *TINY])
    assert full.exit_code == 0, full.output
    rows = read_scores(committed, ROW_COLUMNS)
    assert len(rows) == 3 * (1 + 2 * 2) and "± " in full.output
    assert (committed.parent / "demo_loco_run.json").is_file()
    rerun = tmp_path / "rerun.csv"
    args = ["evaluate", "--out", str(rerun), "--city", "beta", "--hour", "morning", "--seed", "1", "--method", "cnn",
            "--workers", "1", "--compare", str(committed)]
    again = runner.invoke(cli.app, [*args, *TINY])
    assert again.exit_code == 0, again.output
    assert "all 2 rows reproduce" in again.output and len(read_scores(rerun)) == 2
    assert "instruction set" not in again.output
    record = committed.parent / "demo_loco_run.json"  # the committed run was made on another CPU
    recorded = json.loads(record.read_text())
    recorded["numerics"]["cpu"] = "another CPU"
    record.write_text(json.dumps(recorded))
    elsewhere = runner.invoke(cli.app, [*args, *TINY])
    assert elsewhere.exit_code == 0, elsewhere.output  # CNN rows still match here: same machine in truth
    assert "CPU, torch's instruction set or library versions differ" in elsewhere.output
    other = runner.invoke(cli.app, [*args, *TINY[:2], "--steps", "3", *TINY[4:]])
    assert other.exit_code == 1
    assert "setting steps is 3 here but 2" in other.output and "method=cnn" in other.output


def test_evaluate_merge_joins_runs_of_different_seeds(tiny_world, tmp_path):
    for seed in ("0", "1"):
        part = runner.invoke(cli.app, ["evaluate", "--out", str(tmp_path / f"seed{seed}.csv"), "--method", "fdas",
                                       "--seed", seed, "--workers", "1", "--city", "alpha", *TINY])
        assert part.exit_code == 0, part.output
    merged = runner.invoke(cli.app, ["evaluate-merge", str(tmp_path / "seed0.csv"), str(tmp_path / "seed1.csv"),
                                     "--out", str(tmp_path / "both.csv"), "--no-figures"])
    assert merged.exit_code == 0, merged.output
    rows = read_scores(tmp_path / "both.csv", ROW_COLUMNS)
    assert list(rows["method"]) == ["data", "fdas", "fdas"] and list(rows["seed"].dropna()) == [0, 1]
    again = runner.invoke(cli.app, ["evaluate-merge", str(tmp_path / "seed0.csv"), str(tmp_path / "seed0.csv"),
                                    "--out", str(tmp_path / "twice.csv")])
    assert again.exit_code == 2 and "appear in more than one part" in again.output
    assert not (tmp_path / "twice.csv").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "0"], "--seeds and --workers must be >= 1"),
    (["--method", "gan"], "unknown method 'gan'"),
    (["--city", "paris"], "unknown city ['paris']"),
    (["--samples", "1"], "samples must be >= 2"),
    (["--nemd", "fast"], "--nemd must be 'exact' or 'coarse'"),
    (["--world", "mars"], "unknown world 'mars'"),
    (["--compare", "nowhere.csv"], "--compare file nowhere.csv does not exist"),
])
def test_evaluate_rejects_bad_arguments_cleanly(tiny_world, tmp_path, args, message):
    result = runner.invoke(cli.app, ["evaluate", "--out", str(tmp_path / "x.csv"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.csv").exists()


def test_spectragan_evaluation_maps_the_context_only_city(shared_data, tmp_path):
    root = shared_data / "spectragan"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    out = tmp_path / "sg.csv"
    result = runner.invoke(cli.app, ["evaluate", "--world", "spectragan", "--spectragan-root", str(root), "--out",
                                     str(out), "--method", "fdas", "--seeds", "1", "--hour", "morning", "--workers",
                                     "1", "--samples", "3", "--steps", "2"])
    assert result.exit_code == 0, result.output
    figure = tmp_path / "sg_figures" / "unseen_dresden_morning.png"
    assert "dresden (morning, context only)" in result.output and figure.read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "sg_figures" / "unseen_dresden_midday.png").exists()
