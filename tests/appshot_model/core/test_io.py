"""Atomic writes: leftovers of dead writers are removed, a live writer's are not; exclusive folders."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.io import (OLD_PREFIX, TMP_PREFIX, atomic_path, exclusive_folder, remove_stale_temporaries,
                                   scratch_path)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_only_dead_writers_leftovers_on_this_host_are_removed(tmp_path):
    target = tmp_path / "cube.nc"
    def of_dead_writer(path):
        return path.with_name(path.name.replace(f"-{os.getpid()}-", f"-{_dead_pid()}-"))

    live = scratch_path(TMP_PREFIX, target)  # this process: still running
    dead, dead_dir = of_dead_writer(scratch_path(TMP_PREFIX, target)), of_dead_writer(scratch_path(OLD_PREFIX, target))
    other_host = tmp_path / f"{TMP_PREFIX}cube.nc-0123abcd-{_dead_pid()}-ffffffff"
    unrelated = tmp_path / f"{TMP_PREFIX}cube.nc.bak-0123abcd-{_dead_pid()}-ffffffff"
    for path in (live, dead, other_host, unrelated):
        path.write_text("partial")
    dead_dir.mkdir()
    (dead_dir / "weights.pt").write_text("old")
    assert sorted(remove_stale_temporaries(target)) == sorted([dead, dead_dir])
    assert live.exists() and other_host.exists() and unrelated.exists()
    with atomic_path(target) as tmp:
        tmp.write_text("complete")
    assert target.read_text() == "complete" and live.exists()


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "table.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert [p.name for p in tmp_path.iterdir()] == ["table.json"] and target.read_text() == "old"


def test_exclusive_folder(tmp_path):
    out = tmp_path / "out"
    with exclusive_folder(out):
        with pytest.raises(AppshotInputError, match=f"output folder {out} is being written by another"), \
                exclusive_folder(out):
            pass
        assert out.is_dir()
    assert not out.exists()  # created here and left empty: removed again
    out.mkdir()
    with exclusive_folder(out):
        (out / "kept").write_text("x")
    assert (out / "kept").exists()
