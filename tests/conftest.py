"""Shared fixtures: where the real public data lives (../shared/data beside the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The tests train tiny networks: one intra-op thread each avoids OpenMP spin contention on a busy 2-core
# machine (training reads APPSHOT_TORCH_THREADS; see appshot_model.core.threads.configure_torch_threads).
os.environ.setdefault("APPSHOT_TORCH_THREADS", "1")


def shared_data_dir() -> Path:
    """``$APPSHOT_SHARED_DATA`` or ``../shared/data`` relative to the repository root."""
    return Path(os.environ.get("APPSHOT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real test data folder {path} is absent")
    return path


@pytest.fixture
def one_torch_thread():
    """Tiny networks: one intra-op thread avoids OpenMP spin contention on a busy 2-core machine."""
    from appshot_model.core.threads import torch_threads

    with torch_threads(1):
        yield
