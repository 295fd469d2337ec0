"""Publication: layout, determinism, atomicity, id handling."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.release import layout, list_releases, publish_release, verify_release
from appshot_model.release.manifest import check_manifest

DATE = dt.date(2025, 3, 1)


def _publish(fakes, tmp_path: Path, root: Path, **kwargs):
    parts = [fakes.make_part(tmp_path, "aurora", "morning"), fakes.make_part(tmp_path, "aurora", "evening", seed=9)]
    return publish_release(parts, root, release_date=DATE, **kwargs)


def test_publish_layout_and_verify(fakes, tmp_path):
    result = _publish(fakes, tmp_path, tmp_path / "releases", created="2025-03-01T10:00:00+00:00")
    assert result.status == "published"
    root = result.path
    assert root.name == result.release_id and result.release_id.startswith("20250301-")
    for rel in ["manifest.json", "card.md", "card.json", "catalog.json", "aurora/morning/item.json",
                "aurora/morning/snapshots.nc", "aurora/morning/grid.parquet", "aurora/morning/cog/sample_002.tif",
                "models/morning/model.json", "models/morning/weights.bin", "context/aurora.nc"]:
        assert (root / rel).is_file(), rel
    assert list_releases(tmp_path / "releases") == [root]
    report = verify_release(root, load_model=fakes.FakeArtefact, generate=fakes.fake_generate)
    assert report.ok, report.problems
    assert report.regenerated == ["aurora/morning", "aurora/evening"]
    assert report.cogs_checked == 6 and report.stac_objects == 3
    card = (root / "card.md").read_text()
    assert "SYNTHETIC" in card and "Xu et al." in card
    assert "synthetic: model trained on the simulated demo world applied to simulated context of aurora" in card


def test_identical_releases_apart_from_creation_time(fakes, tmp_path):
    a = _publish(fakes, tmp_path / "a", tmp_path / "ra", created="2025-03-01T10:00:00+00:00")
    b = _publish(fakes, tmp_path / "b", tmp_path / "rb", created="2025-03-01T23:59:59+00:00")
    assert a.release_id == b.release_id
    files_a = sorted(p.relative_to(a.path) for p in a.path.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b.path) for p in b.path.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        if rel.name == layout.MANIFEST:
            continue
        # the model dir paths differ (tmp/a vs tmp/b), and are recorded in the card
        if rel.name in {"card.json", "card.md"}:
            text_a = (a.path / rel).read_text().replace(str(tmp_path / "a"), "X")
            text_b = (b.path / rel).read_text().replace(str(tmp_path / "b"), "X")
            assert text_a == text_b, rel
            continue
        assert (a.path / rel).read_bytes() == (b.path / rel).read_bytes(), rel
    man_a = json.loads((a.path / "manifest.json").read_text())
    man_b = json.loads((b.path / "manifest.json").read_text())
    assert man_a.pop("created") != man_b.pop("created")
    for man in (man_a, man_b):
        for name in ("card.json", "card.md"):
            man["files"].pop(name)
        man.pop("content_sha256")
    assert man_a == man_b


def test_same_inputs_same_paths_byte_identical_except_created(fakes, tmp_path):
    a = _publish(fakes, tmp_path, tmp_path / "ra", created="2025-03-01T10:00:00+00:00")
    b = _publish(fakes, tmp_path, tmp_path / "rb", created="2025-03-02T11:00:00+00:00")
    for p in a.path.rglob("*"):
        if p.is_file() and p.name != layout.MANIFEST:
            assert p.read_bytes() == (b.path / p.relative_to(a.path)).read_bytes(), p
    man_a = json.loads((a.path / "manifest.json").read_text())
    man_b = json.loads((b.path / "manifest.json").read_text())
    assert man_a.pop("created") != man_b.pop("created") and man_a == man_b


def test_republish_is_already_published(fakes, tmp_path):
    first = _publish(fakes, tmp_path, tmp_path / "r", created="2025-03-01T10:00:00+00:00")
    again = _publish(fakes, tmp_path, tmp_path / "r", created="2025-03-05T10:00:00+00:00")
    assert again.status == "already published" and again.release_id == first.release_id
    assert json.loads((first.path / "manifest.json").read_text())["created"] == "2025-03-01T10:00:00+00:00"
    assert not [p for p in (tmp_path / "r").iterdir() if p.name.startswith(".")]


def test_different_content_under_same_id_is_an_error(fakes, tmp_path):
    first = _publish(fakes, tmp_path, tmp_path / "r")
    with pytest.raises(AppshotInputError, match="different release"):
        _publish(fakes, tmp_path, tmp_path / "r", fidelity={"morning": [{"metric": "WErr", "value": 0.2}]})
    assert check_manifest(first.path) == []


@pytest.mark.parametrize("step", ["cog", "netcdf", "grid", "card", "stac", "manifest", "rename"])
def test_failure_midway_leaves_previous_release_and_no_staging(fakes, tmp_path, step):
    root = tmp_path / "r"
    previous = _publish(fakes, tmp_path, root)
    before = {p: p.read_bytes() for p in previous.path.rglob("*") if p.is_file()}

    def crash(name: str) -> None:
        if name == step:
            raise RuntimeError(f"killed at {name}")

    other = [fakes.make_part(tmp_path, "borealis", "morning", seed=3)]
    with pytest.raises(RuntimeError, match="killed"):
        publish_release(other, root, release_date=DATE, hook=crash)
    assert list_releases(root) == [previous.path]
    assert sorted(p.name for p in root.iterdir()) == [previous.release_id]
    assert {p: p.read_bytes() for p in previous.path.rglob("*") if p.is_file()} == before


def test_rejects_unlabelled_or_duplicated_parts(fakes, tmp_path):
    part = fakes.make_part(tmp_path)
    with pytest.raises(AppshotInputError, match="twice"):
        publish_release([part, part], tmp_path / "r")
    bad = part.snapshots.copy()
    bad.attrs["label"] = "simulated"
    with pytest.raises(AppshotInputError, match="label='simulated'"):
        layout.ReleasePart("aurora", "morning", bad)
    with pytest.raises(AppshotInputError, match="city"):
        layout.ReleasePart("../x", "morning", part.snapshots)
