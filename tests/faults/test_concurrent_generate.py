"""Two ``appshot generate`` into the same ``--out`` at once: the first ends with a complete, verifiable
release, the second stops at once with a clear error (the folder is locked while it is written)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from appshot_model.release import verify_release

REPO = Path(__file__).resolve().parents[2]
FAKES = REPO / "tests" / "appshot_model" / "release" / "conftest.py"
#: The real CLI with stand-ins for the model, region and generator (tests/appshot_model/release/conftest.py);
#: the generator announces that it runs (the --out lock is then held) and waits for a "go" file.
RUNNER = """
import functools, importlib.util, sys, time
from pathlib import Path
spec = importlib.util.spec_from_file_location("release_fakes", sys.argv[1])
fakes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fakes)
import appshot_model.release.build as build
work = Path(sys.argv[2])

def waiting_generate(*args, **kwargs):
    (work / "generating").write_text("")
    while not (work / "go").exists():
        time.sleep(0.05)
    return fakes.fake_generate(*args, **kwargs)

build.generate_for_region = functools.partial(build.generate_for_region,
                                              **{**fakes.generate_kwargs(), "generate": waiting_generate})
sys.argv = ["appshot", "generate", "--model", str(work / "model"), "--region", str(work / "vaduz.yaml"),
            "--out", str(work / "out"), "--samples", "2", "--seed", "5"]
from pipelines.cli import main
main()
"""


def _fakes():
    spec = importlib.util.spec_from_file_location("release_fakes_for_faults", FAKES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _generate(work: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(FAKES), str(work)], cwd=work,
                            env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_generates_into_one_out_folder(tmp_path):
    fakes = _fakes()
    fakes.make_model_dir(tmp_path / "model")
    (tmp_path / "vaduz.yaml").write_text("name: Vaduz\n")
    first = _generate(tmp_path)
    deadline = time.monotonic() + 120
    while not (tmp_path / "generating").exists():
        assert first.poll() is None, first.communicate()[0]
        assert time.monotonic() < deadline, "the first generate never started generating"
        time.sleep(0.05)
    (tmp_path / "generating").unlink()
    second = _generate(tmp_path)
    try:
        second_output = second.communicate(timeout=120)[0]
    finally:
        (tmp_path / "go").write_text("")
    first_output = first.communicate(timeout=120)[0]
    assert second.returncode == 2, second_output
    assert f"error: --out folder {tmp_path / 'out'} is being written by another appshot process" in \
        " ".join(second_output.split())
    assert "Traceback" not in second_output and not (tmp_path / "generating").exists()  # stopped before generating
    assert first.returncode == 0, first_output
    assert "published" in first_output
    report = verify_release(tmp_path / "out", load_model=fakes.FakeArtefact, generate=fakes.fake_generate)
    assert report.ok, report.problems
    assert json.loads((tmp_path / "out" / "card.json").read_text())["parts"][0]["samples"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
