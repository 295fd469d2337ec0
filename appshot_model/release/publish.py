"""Assemble a release in a staging folder and publish it atomically.

A release is built completely inside ``<releases>/.staging-release-<random>-<pid>-<host>`` and then
renamed to ``<releases>/<release_id>`` in one ``os.rename``; any failure removes the staging folder
(a full disk is reported as :class:`~appshot_model.core.errors.AppshotStorageError`), so no partial
release is ever visible and earlier releases are never touched. Staging folders of publishers that
were killed outright are removed by the next publication into the same folder. The release id is
``<YYYYMMDD>-<first 12 hex of the SHA-256 over the data files>`` (COGs, NetCDF, GeoParquet,
context cubes, model files), so it depends on content and date, never on the clock time. The
creation time is recorded only in ``manifest.json`` (field ``created``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from appshot_model.core.cube import write_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.io import remove_stale_temporaries, scratch_path, storage_error
from appshot_model.release import layout
from appshot_model.release.card import card_dict, write_card
from appshot_model.release.files import check_cog, write_cog, write_grid_summary, write_netcdf
from appshot_model.release.manifest import (content_hash, file_entries, read_manifest, same_content, sha256_file,
                                            write_manifest)
from appshot_model.release.stac import validate_catalog, write_catalog

#: Called with the name of each step as it starts (tests raise from it to inject failures).
StepHook = Callable[[str], None]
ID_HASH_CHARS = 12
STAGING_NAME = "release"


@dataclass(frozen=True)
class PublishResult:
    """Outcome of a publication: where the release is and whether it was new."""

    release_id: str
    path: Path
    status: str  # "published" or "already published"
    manifest: dict

    @property
    def already_published(self) -> bool:
        return self.status == "already published"


def _no_hook(step: str) -> None:
    return None


def _check_parts(parts: Sequence[layout.ReleasePart]) -> None:
    if not parts:
        raise AppshotInputError("a release needs at least one city x peak hour of generated snapshots")
    seen: set[tuple[str, str]] = set()
    model_by_hour: dict[str, str] = {}
    for part in parts:
        key = (part.city, part.hour)
        if key in seen:
            raise AppshotInputError(f"city x hour {part.city}/{part.hour} appears twice in the release")
        seen.add(key)
        model_hash = str(part.snapshots.attrs["model_hash"])
        if model_by_hour.setdefault(part.hour, model_hash) != model_hash:
            raise AppshotInputError(
                f"peak hour {part.hour} mixes models {model_by_hour[part.hour][:12]} and {model_hash[:12]}; "
                "a release uses one model per hour")


def _copy_model(source: Path, target: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for path in sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith(".")):
        relative = path.relative_to(source)
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        files[(Path(layout.MODELS_DIR) / target.name / relative).as_posix()] = sha256_file(destination)
    if not files:
        raise AppshotInputError(f"model directory {source} holds no files")
    return files


def _normalise_fidelity(fidelity: object) -> dict[str, list[dict]] | None:
    if fidelity is None:
        return None
    if hasattr(fidelity, "to_dict"):  # a pandas DataFrame
        return {"fidelity": fidelity.reset_index().to_dict("records")}  # type: ignore[union-attr]
    if isinstance(fidelity, Mapping):
        return {str(k): [dict(r) for r in (v.to_dict("records") if hasattr(v, "to_dict") else v)]
                for k, v in fidelity.items()}
    raise AppshotInputError(f"fidelity table of type {type(fidelity).__name__} is not a table or a mapping of tables")


def assemble(parts: Sequence[layout.ReleasePart], staging: Path, *, release_date: dt.date,
             created: str, fidelity: object = None, title: str = "", hook: StepHook = _no_hook,
             progress: bool = False) -> dict:
    """Write every file of a release into the empty folder ``staging``; return its manifest."""
    _check_parts(parts)
    fidelity_tables = _normalise_fidelity(fidelity)
    model_files: dict[str, dict[str, str]] = {}
    written_contexts: set[str] = set()
    for part in tqdm(parts, desc="release parts", disable=not progress, unit="part"):
        hook(f"part:{part.city}/{part.hour}")
        if part.model_dir is not None and part.hour not in model_files:
            hook("model")
            model_files[part.hour] = _copy_model(part.model_dir, staging / layout.model_dir(part.hour))
        if part.context is not None and part.city not in written_contexts:
            hook("context")
            write_cube(part.context, staging / layout.context_path(part.city))
            written_contexts.add(part.city)
        folder = staging / layout.part_dir(part.city, part.hour)
        tags = {"label": "synthetic", "city": part.city, "peak_hour": part.hour, "seed": part.seed,
                "model_hash": str(part.snapshots.attrs["model_hash"]), "units": str(part.snapshots.attrs["units"]),
                "statement": part.label_statement}
        for sample in range(part.n_samples):
            hook("cog")
            cog = write_cog(part.snapshots.isel(sample=sample), folder / layout.COG_DIR / layout.cog_name(sample),
                            {**tags, "sample": sample})
            check_cog(cog)
        hook("netcdf")
        write_netcdf(part.snapshots, folder / layout.NETCDF,
                     {**tags, "title": f"appshot synthetic traffic, {part.city}, {part.hour} peak",
                      "source": "AppShot conditional GAN (appshot)", "references": "Xu et al., IEEE TNSM 2022",
                      "institution": "", "comment": "SYNTHETIC: generated by a model, not measured"})
        hook("grid")
        write_grid_summary(part.snapshots, folder / layout.GRID)
    hook("hash")
    data = file_entries(staging)
    release_id = f"{release_date:%Y%m%d}-{content_hash(data)[:ID_HASH_CHARS]}"
    hook("card")
    write_card(staging, card_dict(release_id, release_date.isoformat(), parts, model_files, fidelity_tables, title))
    hook("stac")
    validate_catalog(write_catalog(staging, parts, release_id, release_date))
    hook("manifest")
    return write_manifest(staging, release_id, created)


def _install(staging: Path, target: Path, manifest: dict) -> str:
    """Rename ``staging`` to ``target`` unless ``target`` already holds a release."""
    if target.exists():
        if (target / layout.MANIFEST).is_file():
            existing = read_manifest(target)
            if same_content(existing, manifest):
                return "already published"
            raise AppshotInputError(
                f"{target} already holds a different release ({existing.get('release_id')}); "
                "a published release is never overwritten — choose another output folder")
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        else:
            raise AppshotInputError(f"{target} exists and is not an appshot release; choose an empty or new folder")
    try:
        os.rename(staging, target)
    except OSError as exc:
        raise AppshotInputError(f"cannot publish {target}: {exc}") from exc
    return "published"


def _build(parts: Sequence[layout.ReleasePart], parent: Path, target_of: Callable[[str], Path], *,
           release_date: dt.date | None, created: str | None, fidelity: object, title: str,
           hook: StepHook | None, progress: bool) -> PublishResult:
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(parent / STAGING_NAME, (layout.STAGING_PREFIX,))  # left by killed publishers
    staging = scratch_path(layout.STAGING_PREFIX, parent / STAGING_NAME)
    staging.mkdir()
    hook = hook or _no_hook
    try:
        now = dt.datetime.now(dt.timezone.utc)
        manifest = assemble(parts, staging, release_date=release_date or now.date(),
                            created=created or now.isoformat(timespec="seconds"), fidelity=fidelity,
                            title=title, hook=hook, progress=progress)
        target = target_of(manifest["release_id"])
        hook("rename")
        status = _install(staging, target, manifest)
        if status == "already published":
            manifest = read_manifest(target)
        return PublishResult(manifest["release_id"], target, status, manifest)
    except Exception as exc:
        storage = storage_error(exc, staging, parent)
        if storage is not None:
            raise storage from exc
        raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def publish_release(parts: Sequence[layout.ReleasePart], releases_dir: str | os.PathLike, *,
                    release_date: dt.date | None = None, created: str | None = None, fidelity: object = None,
                    title: str = "", hook: StepHook | None = None, progress: bool = False) -> PublishResult:
    """Build a release of ``parts`` and publish it as ``<releases_dir>/<release_id>``.

    ``release_date`` defaults to today (UTC), ``created`` to now; ``hook(step)`` is called as
    each step starts (raise from it to simulate a crash). Publishing identical content again
    returns status ``"already published"``; different content under an existing id is an error.
    """
    root = Path(releases_dir)
    return _build(parts, root, lambda release_id: root / release_id, release_date=release_date,
                  created=created, fidelity=fidelity, title=title, hook=hook, progress=progress)


def write_release_dir(parts: Sequence[layout.ReleasePart], out_dir: str | os.PathLike, *,
                      release_date: dt.date | None = None, created: str | None = None, fidelity: object = None,
                      title: str = "", hook: StepHook | None = None, progress: bool = False) -> PublishResult:
    """Build a release of ``parts`` directly as the folder ``out_dir`` (new or empty), atomically."""
    target = Path(out_dir).absolute()
    return _build(parts, target.parent, lambda _release_id: target, release_date=release_date,
                  created=created, fidelity=fidelity, title=title, hook=hook, progress=progress)
