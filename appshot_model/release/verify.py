"""Verify a published release: manifest, formats, and regeneration from the recorded model."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from appshot_model.core.errors import AppshotInputError
from appshot_model.release import layout
from appshot_model.release.files import check_cog, read_cog_bands, read_netcdf
from appshot_model.release.manifest import check_manifest, read_manifest
from appshot_model.release.stac import validate_catalog

LoadModel = Callable[[Path], Any]
Generate = Callable[..., Any]


@dataclass
class VerifyReport:
    """What ``verify_release`` checked and every problem it found (empty -> the release is intact)."""

    release_dir: Path
    release_id: str = ""
    files_checked: int = 0
    stac_objects: int = 0
    cogs_checked: int = 0
    regenerated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _default_loader(path: Path) -> Any:
    from appshot_model.model.artefact import ModelArtefact

    return ModelArtefact.load(path)


def _default_generate(*args: Any, **kwargs: Any) -> Any:
    from appshot_model.model.generate import generate_snapshots

    return generate_snapshots(*args, **kwargs)


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def regenerate_part(root: Path, part: dict, load_model: LoadModel, generate: Generate) -> str | None:
    """Regenerate sample 0 of one part from its model and seed; ``None`` when byte-identical, else
    a message naming what differs."""
    from appshot_model.core.cube import read_cube

    city, hour = part["city"], part["peak_hour"]
    model_dir = root / layout.model_dir(hour)
    if not model_dir.is_dir():
        model_dir = Path(part.get("model_dir") or "")
        if not part.get("model_dir") or not model_dir.is_dir():
            return f"{city}/{hour}: no model copy in the release and recorded model dir {part.get('model_dir')!r} is absent"
    context_file = root / layout.context_path(city)
    if not context_file.is_file():
        return f"{city}/{hour}: context cube {layout.context_path(city)} is absent; cannot regenerate"
    artefact = load_model(model_dir)
    recorded_hash = str(part["model_hash"])
    actual_hash = str(getattr(artefact, "model_hash", recorded_hash))
    if actual_hash != recorded_hash:
        return f"{city}/{hour}: model in {model_dir} has hash {actual_hash[:16]}, release records {recorded_hash[:16]}"
    # a sample's noise is keyed by (seed, sample) (per-patch noise: drawn one sample after another from the
    # seeded generator), so sample 0 of a one-sample run is sample 0 of the release
    regenerated = generate(artefact, read_cube(context_file), n_samples=1, seed=int(part["seed"]), progress=False)
    fresh = np.asarray(regenerated.isel(sample=0).transpose("service", "y", "x").values)
    folder = root / layout.part_dir(city, hour)
    stored = read_netcdf(folder / layout.NETCDF).isel(sample=0).transpose("service", "y", "x").values
    if not _same_bytes(fresh, stored):
        return f"{city}/{hour}: regenerated sample 0 differs from {layout.part_dir(city, hour) / layout.NETCDF}"
    _names, cog = read_cog_bands(folder / layout.COG_DIR / layout.cog_name(0))
    if not _same_bytes(fresh, cog):
        return f"{city}/{hour}: regenerated sample 0 differs from {layout.part_dir(city, hour) / layout.COG_DIR / layout.cog_name(0)}"
    return None


def verify_release(release_dir: str | os.PathLike, *, regenerate: bool = True,
                   load_model: LoadModel | None = None, generate: Generate | None = None) -> VerifyReport:
    """Check a release: every file against the manifest (missing, extra and changed files are
    named), the STAC catalog, every COG, and - with ``regenerate`` - that sample 0 of every
    city x hour regenerates byte for byte from the copied model, context and seed."""
    root = Path(release_dir)
    if not root.is_dir():
        raise AppshotInputError(f"release folder {root} does not exist")
    manifest = read_manifest(root)
    report = VerifyReport(root, release_id=str(manifest.get("release_id", "")),
                          files_checked=len(manifest["files"]))
    report.problems += [str(p) for p in check_manifest(root)]
    if report.problems:
        return report  # formats and regeneration are meaningless on altered files
    try:
        report.stac_objects = validate_catalog(root / layout.CATALOG)
    except AppshotInputError as exc:
        report.problems.append(str(exc))
    for cog in sorted(root.glob(f"*/*/{layout.COG_DIR}/*.tif")):
        try:
            check_cog(cog)
            report.cogs_checked += 1
        except AppshotInputError as exc:
            report.problems.append(str(exc))
    if regenerate:
        card = json.loads((root / layout.CARD_JSON).read_text())
        for part in card["parts"]:
            try:
                problem = regenerate_part(root, part, load_model or _default_loader, generate or _default_generate)
            except ImportError as exc:
                problem = f"{part['city']}/{part['peak_hour']}: cannot regenerate, model code unavailable ({exc})"
            except AppshotInputError as exc:
                problem = f"{part['city']}/{part['peak_hour']}: {exc}"
            if problem:
                report.problems.append(problem)
            else:
                report.regenerated.append(f"{part['city']}/{part['peak_hour']}")
    return report
