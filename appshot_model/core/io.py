"""Atomic file writes and exclusive output folders.

A file (or folder) is written under a hidden temporary name beside its target and renamed into
place only when complete, so a reader sees the old version or the new one, never a partial one.
Temporary names carry the writer's process id and a host tag: ``.tmp-<name>-<random>-<pid>-<host>``.
A writer killed outright (``kill -9``, power loss) leaves its temporary behind; the next write of
the same target on the same host removes every such leftover whose process is gone (a live
writer's temporary is never touched). A write that fails because the file system is full or a
file-size limit is reached raises :class:`~appshot_model.core.errors.AppshotStorageError` saying
so, with nothing left behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import hashlib
import os
import re
import resource
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from appshot_model.core.errors import AppshotInputError, AppshotStorageError

TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"
#: Free bytes under which a failed write is put down to a full file system.
FULL_DISK_BYTES = 1 << 20
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_OWNER = re.compile(r"^[0-9a-f]{8}-(?P<pid>\d+)-(?P<host>[0-9a-f]{8})$")


def scratch_path(prefix: str, target: Path) -> Path:
    """A hidden name beside ``target`` owned by this process: ``<prefix><name>-<random>-<pid>-<host>``."""
    return target.with_name(f"{prefix}{target.name}-{secrets.token_hex(4)}-{os.getpid()}-{_HOST}")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temporaries(target: str | os.PathLike, prefixes: tuple[str, ...] = (TMP_PREFIX, OLD_PREFIX)
                             ) -> list[Path]:
    """Delete the :func:`scratch_path` s of ``target`` left by writers on this host that no longer run;
    returns them."""
    target = Path(target)
    removed = []
    for prefix in prefixes:
        start = f"{prefix}{target.name}-"
        for path in target.parent.glob(f"{glob.escape(start)}*"):
            owner = _OWNER.match(path.name[len(start):])
            if owner and owner["host"] == _HOST and not _process_alive(int(owner["pid"])):
                _remove(path)
                removed.append(path)
    return removed


def _largest_file(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return max((p.stat().st_size for p in path.rglob("*") if p.is_file()), default=0)
    return 0


def storage_problem(exc: BaseException, written: Path) -> str | None:
    """Why a write into ``written`` (file or folder, before clean-up) failed, when the cause is storage:
    a full file system or a file-size limit; ``None`` otherwise."""
    chain, seen = exc, set()
    while chain is not None and id(chain) not in seen:
        seen.add(id(chain))
        if isinstance(chain, AppshotStorageError):  # an inner write already found the cause
            return chain.problem
        if isinstance(chain, OSError) and chain.errno in _STORAGE_ERRNOS:
            return os.strerror(chain.errno).lower()
        chain = chain.__cause__ or chain.__context__
    folder = written if written.is_dir() else written.parent
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < FULL_DISK_BYTES:
        return f"the file system is full ({free} bytes free)"
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and _largest_file(written) >= limit:
        return f"the file-size limit of this process ({limit} bytes, `ulimit -f`) was reached"
    return None


def storage_error(exc: BaseException, written: Path, target: Path) -> AppshotStorageError | None:
    """An :class:`AppshotStorageError` for ``target`` when ``exc`` came from storage running out."""
    problem = storage_problem(exc, written)
    if problem is None:
        return None
    root = exc
    while isinstance(root, AppshotStorageError) and root.__cause__ is not None:
        root = root.__cause__
    error = AppshotStorageError(f"could not write {target}: {problem}; nothing was written there (any earlier "
                                f"version is unchanged). Free space and run again. "
                                f"Cause: {type(root).__name__}: {root}")
    error.problem = problem
    return error


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it over ``target``.

    On any exception the temporary file (or directory) is removed and ``target`` is untouched;
    a full disk or file-size limit becomes an :class:`AppshotStorageError` naming ``target``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp_path = scratch_path(TMP_PREFIX, target)
    try:
        yield tmp_path
        if tmp_path.is_dir() and target.is_dir():
            old = scratch_path(OLD_PREFIX, target)
            os.replace(target, old)
            os.replace(tmp_path, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp_path, target)
    except BaseException as exc:
        storage = storage_error(exc, tmp_path, target) if isinstance(exc, Exception) else None
        _remove(tmp_path)
        if storage is not None:
            raise storage from exc
        raise


@contextlib.contextmanager
def exclusive_folder(path: str | os.PathLike, what: str = "output folder") -> Iterator[Path]:
    """Create ``path`` if needed and hold an exclusive lock on it (``flock``) for the duration; a second
    process (or a second holder in this one) gets an :class:`AppshotInputError` at once. The lock goes
    with the process, so a killed writer never leaves the folder locked. A folder created here and
    still empty at the end (the work failed) is removed again."""
    path = Path(path)
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            created = False
            raise AppshotInputError(f"{what} {path} is being written by another appshot process; wait for it "
                                    "to finish or choose another folder") from None
        yield path
    finally:
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()  # only when left empty (the work failed): the folder did not exist before
