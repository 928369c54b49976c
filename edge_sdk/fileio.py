"""Files the SDK writes: always to a temporary file first, then renamed into place."""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge_sdk.errors import OutputExistsError, OutputWriteError, UsageError

# errno values that only a write raises: reported as OutputWriteError naming the file, never as a traceback.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


# Linux limits: 255 bytes per name, 4096 bytes per path. Longer ones fail in every call with ENAMETOOLONG.
NAME_MAX_BYTES = 255
PATH_MAX_BYTES = 4096


def check_path_length(path: Path | str, what: str) -> None:
    """A UsageError for a path no file system call can take (a name over 255 bytes, a path over 4096)."""
    encoded = os.fsencode(str(path))
    longest = max((len(part) for part in encoded.split(b"/")), default=0)
    if longest > NAME_MAX_BYTES or len(encoded) >= PATH_MAX_BYTES:
        shown = str(path) if len(str(path)) <= 80 else str(path)[:40] + "..." + str(path)[-30:]
        raise UsageError(f"{what} {shown} is too long for the file system ({longest} bytes in one name; the limit is {NAME_MAX_BYTES})",
                         fix="choose a shorter file name")


def check_can_write(path: Path, overwrite: bool, what: str = "output") -> None:
    """Refuse to overwrite an existing file unless `overwrite` is set."""
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"{what} {path} already exists; earlier results are never overwritten silently",
            fix="choose another output path or pass --overwrite",
        )


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise _write_error(path, error) from error
    # mkstemp creates 0600; the file we rename into place gets the permissions of a file opened normally (0644 under umask 022).
    os.fchmod(fd, 0o666 & ~_current_umask())
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as error:
        if error.errno in WRITE_ERRNOS:
            raise _write_error(path, error) from error
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def _current_umask() -> int:
    try:  # Linux reports it without changing it (os.umask would, for a moment, for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_error(path: Path, error: OSError) -> OutputWriteError:
    fix = "free disk space (or choose another output folder) and run again" if error.errno in (errno.ENOSPC, errno.EDQUOT) else "choose a writable output folder"
    # Only this file's write failed: its temporary file is gone and the file itself is as it was before.
    return OutputWriteError(f"cannot write {path}: {error.strerror or error}; {path.name} was left as it was before", fix=fix)


def check_writable_folder(folder: Path, what: str = "output folder") -> None:
    """Refuse, before any work, a folder (or the nearest existing folder above it) that cannot take a new file:
    read-only file system, no permission, full quota. Probed with a nameless temporary file (O_TMPFILE) where possible."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputWriteError(f"{what} {folder} cannot be created: {existing} is not a folder", fix="choose another output path")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise OutputWriteError(f"{what} {folder} is not writable ({existing}: {error.strerror or error}); nothing was done",
                               fix="choose a writable output folder") from error


@contextlib.contextmanager
def output_lock(output: Path, what: str = "output") -> Iterator[None]:
    """An advisory lock (flock) on `output` for this process: a second edge-sdk writing the same output stops at once
    with OutputExistsError naming the first one's pid. The lock file (`.NAME.lock` beside it) is removed at the end."""
    import fcntl

    output = Path(output)
    lock_path = output.with_name(f".{output.name}.lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+")
    except OSError as error:
        raise _write_error(lock_path, error) from error
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise OutputExistsError(f"{what} {output} is being written by another edge-sdk process (pid {holder}); nothing was done",
                                    fix="wait for it to finish, or choose another output") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            with contextlib.suppress(OSError):
                lock_path.unlink()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def append_text(path: Path, text: str) -> None:
    """Append to a log file (`--log-file`): a log grows line by line, so it is appended to, not replaced; each append
    is one write of whole lines."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise _write_error(path, error) from error


def save_npz_atomic(path: Path, arrays: dict[str, Any]) -> None:
    """np.savez through a temporary file and a rename (a handle, so numpy does not append '.npz' to the name)."""
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())


def copy_file_atomic(source: Path, target: Path) -> None:
    """Copy `source` to `target` (with its modes and times) through a temporary file and a rename."""
    with atomic_path(Path(target)) as tmp:
        shutil.copy2(source, tmp)


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write `payload` as indented JSON through a temporary file and a rename."""
    text = json.dumps(payload, indent=2, sort_keys=False, default=_json_default) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of every file in a directory (sorted by relative path)."""
    digest = hashlib.sha256()
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def size_of(path: Path) -> int:
    """Size in bytes of a file or of all files in a directory."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def gzip_size_of(path: Path) -> int:
    """Size in bytes of the file after gzip -9: where pruning and weight sharing show."""
    sink = _CountingSink()
    with open(path, "rb") as source, gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=9, mtime=0) as zipped:
        shutil.copyfileobj(source, zipped, 1 << 20)
    return sink.count


class _CountingSink:
    def __init__(self) -> None:
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        pass
