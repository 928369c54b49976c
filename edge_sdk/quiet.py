"""Quiet by default: what frameworks print (TensorFlow/absl C++ logs, Python warnings, ONNX Runtime's logging, prints
on stdout such as TF's "Saved artifact at ...") is captured at the file-descriptor level around framework calls.

- Default: captured output is dropped, except its tail, which is shown when the call fails.
- `-v/--verbose`: it is shown, on stderr (never on stdout: stdout carries only our own output, so `--json` parses).
- `--log-file PATH`: it is also appended there, under a line naming the call.

Our own progress and messages go to `our_stderr()`, a copy of stderr taken before any capture, so they are never
swallowed. Capture nests (only the outermost block redirects) and is shared by threads (a lock and a depth count).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

TAIL_LINES = 25


@dataclass
class OutputSettings:
    verbose: bool = False
    log_file: Path | None = None


_settings = OutputSettings()
_lock = threading.RLock()
_depth = 0
_our_stderr: TextIO | None = None


def configure(verbose: bool = False, log_file: Path | None = None) -> None:
    """Set how captured framework output is handled for the rest of the process (the CLI calls this once)."""
    global _settings
    _settings = OutputSettings(verbose, Path(log_file) if log_file else None)
    our_stderr()  # take the copy of stderr now, before any framework is imported


def settings() -> OutputSettings:
    return _settings


def our_stderr() -> TextIO:
    """Our own stderr: a duplicate of fd 2 taken before any capture, so progress shows while frameworks are muted."""
    global _our_stderr
    if _our_stderr is None:
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, ValueError, io.UnsupportedOperation):
            return sys.stderr  # no real stderr (an embedding app, pytest's capture): nothing to duplicate
        _our_stderr = os.fdopen(os.dup(fd), "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8", errors="replace")
    return _our_stderr


def _fd(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return None


@contextlib.contextmanager
def framework_output(what: str) -> Iterator[None]:
    """Capture fds 1 and 2 (and Python warnings) while frameworks run `what` (e.g. "converting model.h5").

    On an exception the captured tail is written to our stderr before the error propagates."""
    global _depth
    with _lock:
        _depth += 1
        outermost = _depth == 1
    if not outermost:
        try:
            yield
        finally:
            with _lock:
                _depth -= 1
        return
    out_fd, err_fd = 1, _fd(sys.stderr)
    if err_fd is None:  # no stderr at the fd level (an embedding app, pytest's capsys): only keep stdout ours
        with _lock:
            _depth -= 1
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    our_stderr()
    capture = tempfile.TemporaryFile(prefix="edge-sdk-output-")
    saved_out, saved_err = os.dup(out_fd), os.dup(err_fd)
    failed = False
    python_stdout = contextlib.redirect_stdout(sys.stderr)  # Python-level prints (TF's "Saved artifact at ...")
    try:
        _flush()
        python_stdout.__enter__()
        target = saved_err if _settings.verbose else capture.fileno()
        os.dup2(target, out_fd)  # framework prints on stdout never reach our stdout
        os.dup2(target, err_fd)
        if _settings.verbose and _settings.log_file:
            # Verbose and a log file: the terminal shows it live; the log gets it too (through the capture file).
            os.dup2(capture.fileno(), out_fd)
            os.dup2(capture.fileno(), err_fd)
        yield
    except BaseException as error:
        # The frameworks' last words help with a failure inside them (a conversion, a runtime, a model file they
        # refused), not with a user's error the SDK already named in full: bad usage or data, an output that exists
        # or cannot be written (one clear message, as the guide asks).
        failed = not _explained_by_us(error)
        raise
    finally:
        _flush()
        python_stdout.__exit__(None, None, None)
        os.dup2(saved_out, out_fd)
        os.dup2(saved_err, err_fd)
        os.close(saved_out)
        os.close(saved_err)
        with _lock:
            _depth -= 1
        capture.seek(0)
        text = capture.read().decode("utf-8", "replace")
        capture.close()
        _deliver(what, text, failed)


def _explained_by_us(error: BaseException) -> bool:
    from edge_sdk.errors import DataError, OutputExistsError, OutputWriteError, UsageError

    return isinstance(error, (UsageError, DataError, OutputExistsError, OutputWriteError))


@contextlib.contextmanager
def stdout_only_ours() -> Iterator[None]:
    """For one CLI command: `sys.stdout` writes to the real stdout through a private duplicate of it, and fd 1 itself
    points at stderr, so whatever else writes to fd 1 (a C library, a runtime) never reaches stdout and `--json` output
    always parses. Restored on exit."""
    out_fd = _fd(sys.stdout)
    if out_fd is None or _fd(sys.stderr) is None:  # pytest's capsys or an embedding app: nothing at the fd level
        yield
        return
    _flush()
    saved = os.dup(out_fd)
    ours = os.fdopen(os.dup(out_fd), "w", buffering=1, encoding=getattr(sys.stdout, "encoding", None) or "utf-8", errors="replace")
    previous = sys.stdout
    os.dup2(_fd(sys.stderr), out_fd)  # type: ignore[arg-type]
    sys.stdout = ours
    try:
        yield
    finally:
        sys.stdout = previous
        try:
            ours.flush()
        except BrokenPipeError:
            pass  # the reader went away (`| head`): the caller reports nothing
        finally:
            with contextlib.suppress(OSError, BrokenPipeError):
                ours.close()
            os.dup2(saved, out_fd)
            os.close(saved)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _deliver(what: str, text: str, failed: bool) -> None:
    if _settings.log_file and text:
        _append_log(_settings.log_file, f"--- {what} ---\n{text}" + ("" if text.endswith("\n") else "\n"))
    if _settings.verbose and _settings.log_file and text:
        our_stderr().write(text)
    elif failed and text.strip() and not _settings.verbose:
        tail = "\n".join(text.rstrip().splitlines()[-TAIL_LINES:])
        hint = f" (all of it in {_settings.log_file})" if _settings.log_file else " (run with -v to see all of it)"
        our_stderr().write(f"framework output while {what}, last {TAIL_LINES} lines{hint}:\n{tail}\n")
    with contextlib.suppress(Exception):
        our_stderr().flush()


def _append_log(path: Path, text: str) -> None:
    from edge_sdk.fileio import append_text

    append_text(path, text)
