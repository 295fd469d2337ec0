"""Which code produced a result: a content hash of the ``appshot_model`` sources and, when the package
sits in a git checkout, its commit and whether the working tree differs from it; and what else decides its
floating-point results (CPU, the instruction set torch uses, library versions)."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def source_hash(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 over the relative paths and bytes of every ``*.py`` and ``*.yaml`` file below
    ``package_dir`` (sorted): the same sources give the same hash on any machine or checkout."""
    digest = hashlib.sha256()
    for path in sorted(p for p in package_dir.rglob("*") if p.suffix in (".py", ".yaml") and p.is_file()):
        digest.update(path.relative_to(package_dir).as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def git_state(folder: Path = PACKAGE_DIR) -> dict[str, str | bool | None]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the git checkout holding ``folder``
    (``dirty``: tracked files under ``folder`` differ from the commit); ``None`` values without git."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=20, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def code_version(package_dir: Path = PACKAGE_DIR) -> dict[str, str | bool | None]:
    """``{"appshot_model_sha256", "git_commit", "git_dirty"}`` for a run record."""
    state = git_state(package_dir)
    return {"appshot_model_sha256": source_hash(package_dir), "git_commit": state["commit"],
            "git_dirty": state["dirty"]}


#: Libraries whose versions can change trained weights or scores.
NUMERIC_LIBRARIES = ("torch", "numpy", "scipy", "scikit-image", "POT")


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (falls back to ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def numerics() -> dict[str, object]:
    """``{"cpu", "torch_cpu_capability", "libraries"}``: what besides code, inputs and seeds decides a CPU run's
    floating-point results. GAN training amplifies rounding differences, so a model trained with the same seed on
    a CPU with another instruction set (measured: torch's AVX512 vs AVX2 kernels) is a different model."""
    versions = {}
    for name in NUMERIC_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu": cpu_model(), "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "libraries": versions}
