"""The appshot command line: help on every command, release commands, clean errors."""

from __future__ import annotations

import datetime as dt
import functools

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from tests.appshot_model.release import conftest as release_fakes

runner = CliRunner()
COMMANDS = [[], ["demo"], ["generate"], ["release"], ["release", "build"], ["release", "verify"], ["show"]]


@pytest.fixture(scope="module")
def fakes():
    """The fake model, generator and run folder of the release tests."""
    return release_fakes


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "appshot")
def test_help_on_every_command(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.fixture
def patched_generate(fakes, monkeypatch):
    import appshot_model.release.build as build

    monkeypatch.setattr(build, "generate_for_region",
                        functools.partial(build.generate_for_region, **fakes.generate_kwargs()))


def test_generate_verify_show(fakes, tmp_path, patched_generate, monkeypatch):
    import appshot_model.release.verify as verify

    model = fakes.make_model_dir(tmp_path / "model")
    region = tmp_path / "vaduz.yaml"
    region.write_text("name: Vaduz\n")
    out = tmp_path / "out"
    args = ["generate", "--model", str(model), "--region", str(region), "--hour", "morning", "--samples", "2",
            "--seed", "3", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "published" in result.output and (out / "manifest.json").is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "already published" in again.output

    monkeypatch.setattr(verify, "_default_loader", fakes.FakeArtefact)
    monkeypatch.setattr(verify, "_default_generate", fakes.fake_generate)
    ok = runner.invoke(app, ["release", "verify", str(out)])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output and "Vaduz/morning" in ok.output

    html = tmp_path / "map.html"
    shown = runner.invoke(app, ["show", str(out), "--out", str(html)])
    assert shown.exit_code == 0, shown.output
    assert html.read_text().count("L.imageOverlay") == 3

    (out / "Vaduz" / "morning" / "cog" / "sample_000.tif").unlink()
    bad = runner.invoke(app, ["release", "verify", str(out), "--no-regenerate"])
    assert bad.exit_code == 1
    assert "missing: Vaduz/morning/cog/sample_000.tif" in bad.output


def test_generate_errors_are_clean(fakes, tmp_path, patched_generate):
    model = fakes.make_model_dir(tmp_path / "model")
    region = tmp_path / "bad.yaml"
    region.write_text("boundary: nowhere\n")
    result = runner.invoke(app, ["generate", "--model", str(model), "--region", str(region), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "field 'name'" in result.output and "Traceback" not in result.output
    missing = runner.invoke(app, ["generate", "--model", str(tmp_path / "nope"), "--region", str(region),
                                  "--out", str(tmp_path / "out")])
    assert missing.exit_code == 2 and "model directory" in missing.output


def test_release_build_from_run_dir(fakes, tmp_path, monkeypatch):
    import appshot_model.release.build as build
    from appshot_model.core.cube import write_cube

    monkeypatch.setattr(build, "load_model", fakes.FakeArtefact)
    assets = tmp_path / "assets"
    part = fakes.make_part(tmp_path, "aurora", "morning")
    write_cube(part.snapshots, assets / "generated_snapshots" / "aurora" / "morning.nc")
    write_cube(part.context, assets / "context_cube" / "aurora.nc")
    fakes.make_model_dir(assets / "trained_model" / "morning")
    args = ["release", "build", "--run-dir", str(assets), "--releases", str(tmp_path / "releases")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    released = [p for p in (tmp_path / "releases").iterdir()]
    assert len(released) == 1 and released[0].name.startswith(dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d"))
    nothing = runner.invoke(app, ["release", "build", "--run-dir", str(tmp_path / "none")])
    assert nothing.exit_code == 2 and "no generated snapshots" in nothing.output


def test_generate_without_model_code_is_a_clean_error(fakes, tmp_path, monkeypatch):
    import appshot_model.release.build as build

    def missing(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'appshot_model.model.generate'")

    monkeypatch.setattr(build, "generate_for_region", missing)
    region = tmp_path / "r.yaml"
    region.write_text("name: r\n")
    result = runner.invoke(app, ["generate", "--model", str(tmp_path), "--region", str(region), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 1 and "appshot_model.model.generate" in result.output and "Traceback" not in result.output


def test_generate_passes_the_dask_address_on(fakes, tmp_path, monkeypatch):
    import appshot_model.release.build as build

    seen = {}
    original = build.generate_for_region

    def recording(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **{**kwargs, **fakes.generate_kwargs()})

    monkeypatch.setattr(build, "generate_for_region", recording)
    model = fakes.make_model_dir(tmp_path / "model")
    region = tmp_path / "vaduz.yaml"
    region.write_text("name: Vaduz\n")
    result = runner.invoke(app, ["generate", "--model", str(model), "--region", str(region), "--out",
                                 str(tmp_path / "out"), "--samples", "1", "--dask-address", "tcp://10.0.0.5:8786"])
    assert result.exit_code == 0, result.output
    assert seen["dask_address"] == "tcp://10.0.0.5:8786"
