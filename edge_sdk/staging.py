"""The staging folder of one output: where a converter and every third-party tool it calls write, before the
finished files are moved into place.

A staging folder is a hidden `.NAME.staging-PID-XXXX` folder beside the output (same file system, so the move is
a rename). It is removed when the conversion fails; one left by a killed run is removed by the next run that
writes the same output, once the process named in it is gone. Third-party steps run with it as their working
directory: ORT's `quant_pre_process` writes `sym_shape_infer_temp.onnx` and `<uuid>.data` into the current
working directory (issue 15), which must stay the user's folder, untouched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from edge_sdk.fileio import _write_error

_CWD_LOCK = threading.RLock()  # the working directory is process-wide: one conversion at a time moves it (re-entrant: nesting restores in order)


def staging_prefix(output: Path) -> str:
    return f".{Path(output).name}.staging-"


def remove_stale_staging(output: Path) -> list[Path]:
    """Remove staging folders of `output` whose process is gone (a killed run); name each on stderr."""
    output = Path(output)
    removed: list[Path] = []
    if not output.parent.is_dir():
        return removed
    pattern = re.compile(re.escape(staging_prefix(output)) + r"(\d+)-")
    for folder in output.parent.iterdir():
        match = pattern.match(folder.name)
        if not match or not folder.is_dir() or _process_alive(int(match.group(1))):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
        print(f"note: removed {folder}, left by a stopped conversion (process {match.group(1)}) of {output}", file=sys.stderr)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


@contextlib.contextmanager
def staging_folder(output: Path) -> Iterator[Path]:
    """A fresh staging folder for `output`, removed when the block ends (moved files are no longer in it)."""
    output = Path(output)
    remove_stale_staging(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{staging_prefix(output)}{os.getpid()}-", dir=output.parent))
    except OSError as error:
        raise _write_error(output, error) from error
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def working_directory(folder: Path) -> Iterator[None]:
    """Run a third-party step with `folder` as the working directory; the previous one is always restored."""
    with _CWD_LOCK:
        previous = os.getcwd()
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(previous)


def publish(staged: Path, output: Path, companions: Sequence[str] = ()) -> None:
    """Move a staged artifact and the files it refers to (external data, by name) beside `output`.

    Companions go first: the artifact must never point at a missing file."""
    try:
        for name in companions:
            os.replace(staged.parent / name, Path(output).parent / name)
        os.replace(staged, output)
    except OSError as error:
        raise _write_error(Path(output), error) from error
