"""Helpers to attach figures and tables to Dagster materialisations."""

from __future__ import annotations

import base64
from pathlib import Path

from dagster import MetadataValue

from appshot_model.core.io import atomic_path


def png_metadata(png: bytes, path: Path, caption: str) -> dict[str, MetadataValue]:
    """Save ``png`` to ``path`` (atomically) and return metadata showing it inline in the UI."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)
    encoded = base64.b64encode(png).decode("ascii")
    return {
        f"{caption}_png": MetadataValue.path(str(path)),
        caption: MetadataValue.md(f"![{caption}](data:image/png;base64,{encoded})"),
    }
