"""SHA-256 manifest of every file in a release, and its check."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.io import atomic_path
from appshot_model.release.layout import MANIFEST

CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def release_files(root: str | os.PathLike) -> list[str]:
    """Every file under ``root`` except the manifest, as sorted POSIX relative paths."""
    root = Path(root)
    found = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()]
    return sorted(f for f in found if f != MANIFEST)


def file_entries(root: str | os.PathLike, files: Iterable[str] | None = None) -> dict[str, dict]:
    """``{relative path: {"sha256", "bytes"}}`` for the given (default: all) files."""
    root = Path(root)
    names = release_files(root) if files is None else sorted(files)
    return {name: {"sha256": sha256_file(root / name), "bytes": (root / name).stat().st_size}
            for name in names}


def content_hash(entries: dict[str, dict]) -> str:
    """Hex SHA-256 over the sorted ``path`` and file hashes (independent of any timestamp)."""
    digest = hashlib.sha256()
    for name in sorted(entries):
        digest.update(f"{entries[name]['sha256']}  {name}\n".encode())
    return digest.hexdigest()


def write_manifest(root: str | os.PathLike, release_id: str, created: str) -> dict:
    """Hash every file of ``root`` into ``root/manifest.json``; return the manifest."""
    root = Path(root)
    entries = file_entries(root)
    manifest = {"release_id": release_id, "algorithm": "sha256", "created": created,
                "content_sha256": content_hash(entries), "files": entries}
    with atomic_path(root / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(root: str | os.PathLike) -> dict:
    """The manifest of a release folder (clear error when absent or unreadable)."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise AppshotInputError(f"{path} does not exist: {Path(root)} is not an appshot release")
    try:
        manifest = json.loads(path.read_text())
        manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise AppshotInputError(f"{path} is not a valid release manifest: {exc}") from exc
    return manifest


@dataclass
class ManifestProblem:
    """One file that does not match the manifest."""

    path: str
    kind: str  # "missing", "extra", "changed"
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}" + (f" ({self.detail})" if self.detail else "")


def check_manifest(root: str | os.PathLike) -> list[ManifestProblem]:
    """Compare every file of ``root`` with its manifest; empty list when all match."""
    root = Path(root)
    manifest = read_manifest(root)
    recorded: dict[str, dict] = manifest["files"]
    present = set(release_files(root))
    problems = [ManifestProblem(name, "missing", "listed in the manifest, absent on disk")
                for name in sorted(set(recorded) - present)]
    problems += [ManifestProblem(name, "extra", "on disk, not in the manifest")
                 for name in sorted(present - set(recorded))]
    for name in sorted(present & set(recorded)):
        actual = sha256_file(root / name)
        if actual != recorded[name].get("sha256"):
            problems.append(ManifestProblem(
                name, "changed", f"sha256 {actual[:12]}... differs from recorded {str(recorded[name].get('sha256'))[:12]}..."))
    return problems


def same_content(manifest_a: dict, manifest_b: dict) -> bool:
    """Whether two manifests list the same files with the same hashes (creation time ignored)."""
    return {k: v["sha256"] for k, v in manifest_a["files"].items()} == \
        {k: v["sha256"] for k, v in manifest_b["files"].items()}
