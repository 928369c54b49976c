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

from edge_sdk.errors import OutputExistsError, OutputWriteError

# errno values that only a write raises: reported as OutputWriteError naming the file, never as a traceback.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


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
    fix = "free disk space (or choose another output folder) and run again; finished results were kept" if error.errno in (errno.ENOSPC, errno.EDQUOT) else "choose a writable output folder"
    return OutputWriteError(f"cannot write {path}: {error.strerror or error}; nothing partial was left behind", fix=fix)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


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
