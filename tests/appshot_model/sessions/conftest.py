"""Session tests: the real seed-004 coefficient release and small hand-written coefficient folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.sessions.coefficients import SessionCoefficients, read_coefficients

#: A tiny but complete coefficient release: two apps, ten deciles.
ARRIVALS = "decile,peak,alpha,loc,scale\n" + "".join(
    f"{d / 10:.1f},peak,-,{2.0 * d},{0.2 * d}\n{d / 10:.1f},nonpeak,1.765,0.0,{0.5 * d}\n" for d in range(1, 11))
SHARES = "app,sessions%,traffic%\nAlpha,60,30\nBeta,30,70\n"
MIXTURES = "app,u_g,s_g,u_0,s_0,w_0,u_1,s_1,w_1\nAlpha,5.0,0.5,6.0,0.1,0.25,-,-,-\nBeta,6.0,0.8,-,-,-,-,-,-\n"
DURATIONS = "app,a,b\nAlpha,1000,1.0\nBeta,10000,0.5\n"
FILES = {"arrival_coefs.csv": ARRIVALS, "sessions_share.csv": SHARES, "pdf_coefs.csv": MIXTURES,
         "duration_coefs.csv": DURATIONS}
#: Services of the tiny release: "alpha" has its own row, "gamma" borrows Beta's.
MAPPING = {"alpha": ("Alpha",), "gamma": ("Beta",)}


def _write(folder: Path, edits: dict[str, tuple[str, str]] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        old, new = (edits or {}).get(name.removesuffix(".csv"), ("", ""))
        if old and old not in text:
            raise AssertionError(f"test edit {old!r} not found in {name}")
        (folder / name).write_text(text.replace(old, new) if old else text)
    return folder


@pytest.fixture
def write_release():
    """Write the tiny release into a folder, editing files: ``{"pdf_coefs": (old, new)}``."""
    return _write


@pytest.fixture
def tiny_coefficients(tmp_path) -> SessionCoefficients:
    return read_coefficients(_write(tmp_path / "coefficients"))


@pytest.fixture
def tiny_mapping() -> dict[str, tuple[str, ...]]:
    return dict(MAPPING)


@pytest.fixture
def release() -> SessionCoefficients:
    """The real seed-004 coefficient release (skips when the shared data folder is absent)."""
    try:
        return read_coefficients()
    except AppshotInputError as exc:
        pytest.skip(str(exc))

