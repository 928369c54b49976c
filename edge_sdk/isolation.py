"""Run one artifact's load and inference in a child process, so that a native crash (SIGSEGV, SIGABRT), an
out-of-memory kill (SIGKILL) or a hang becomes an error naming the artifact and the signal, and the bench goes on.

The child is a fresh interpreter (`python -m edge_sdk.isolation FD`), not a fork and not multiprocessing's
'spawn' (which re-runs the caller's `__main__`: a script without an `if __name__ == "__main__"` guard would
bench itself recursively). The parent sends a pickled `WorkerRequest` on the child's stdin; the child sends
pickled messages back on the pipe FD: `("phase", "loading")`, then `("ok", value)` or an error. The pipe only
carries what this process sent to its own child, never a file a user gave. The child ignores SIGINT (the parent
decides: on Ctrl-C it kills the child and stops) and dies with its parent (Linux PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from edge_sdk.errors import EdgeSdkError, RuntimeFailure

CRASH_SIGNALS = ("SIGSEGV", "SIGABRT", "SIGBUS", "SIGILL", "SIGFPE")
# Words of the errors an address-space limit causes besides MemoryError (dlopen: "failed to map segment").
_MEMORY_WORDS = {"map", "allocate", "bad_alloc", "memory"}


@dataclass
class IsolationLimits:
    """Per-artifact limits of the worker: wall-clock seconds (None: none) and address space in bytes (None: none)."""

    timeout_s: float | None = 600.0
    memory_limit_bytes: int | None = None


@dataclass
class WorkerRequest:
    target: str  # "package.module:function", called as function(payload, phase)
    payload: Any
    memory_limit_bytes: int | None = None


def run_isolated(target: str, payload: Any, *, label: str, limits: IsolationLimits) -> Any:
    """Call `target(payload, phase)` in a child process and return its value.

    Errors of the SDK raised in the child are raised here unchanged; a death by signal, a timeout, an out-of-memory
    error or any other failure of the child becomes a RuntimeFailure that starts with `label` (the artifact's name).
    """
    from multiprocessing.connection import Connection

    read_fd, write_fd = os.pipe()
    with tempfile.TemporaryFile(prefix="edge-sdk-worker-") as log:
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "edge_sdk.isolation", str(write_fd)], stdin=subprocess.PIPE, stdout=log, stderr=log,
                pass_fds=(write_fd,), env=_child_env(),
            )
        finally:
            os.close(write_fd)
        receive = Connection(read_fd, writable=False)
        phase = "starting"
        try:
            assert process.stdin is not None
            process.stdin.write(pickle.dumps(WorkerRequest(target, payload, limits.memory_limit_bytes)))
            process.stdin.close()
            message, phase = _wait_for_answer(receive, phase, limits.timeout_s)
        except BrokenPipeError:
            message = None  # the child died before reading its request; its exit status says how
        except _Timeout as timeout:
            _stop(process)
            raise RuntimeFailure(
                f"{label}: did not finish within {limits.timeout_s:g} s while {_doing(str(timeout))} it (timeout); the worker was stopped",
                fix="raise --timeout if the model is only slow; a runtime that never returns hangs on this file",
            ) from None
        except BaseException:
            _stop(process)  # Ctrl-C or a timeout: never leave a worker running
            raise
        finally:
            receive.close()
        if message is None:
            returncode = process.wait()
        else:
            returncode = _reap(process)
        log.seek(0)
        log_tail = log.read()[-2000:].decode("utf-8", "replace").strip()
    return _outcome(message, returncode, phase, label, limits, log_tail)


class _Timeout(Exception):
    pass


def _wait_for_answer(receive: Any, phase: str, timeout_s: float | None) -> tuple[Any, str]:
    """Read phase messages until the final one; None when the child died first (the pipe closed)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not receive.poll(remaining):
            raise _Timeout(phase)
        try:
            message = receive.recv()
        except EOFError:
            return None, phase
        if message[0] == "phase":
            phase = message[1]
            continue
        return message, phase


def _outcome(message: Any, returncode: int, phase: str, label: str, limits: IsolationLimits, log_tail: str) -> Any:
    limit_note = f" under the memory limit of {limits.memory_limit_bytes / 2**20:g} MiB" if limits.memory_limit_bytes else ""
    if message is not None:
        kind = message[0]
        if kind == "ok":
            return message[1]
        if kind == "error":
            error_class, text, fix = message[1:]
            raise error_class(text, fix=fix)
        if kind == "memory" or (kind == "failed" and limits.memory_limit_bytes and _MEMORY_WORDS & set(message[1].lower().split())):
            raise RuntimeFailure(f"{label}: ran out of memory{limit_note} while {_doing(phase)} it: {message[1].splitlines()[0]}",
                                 fix="raise --memory-limit, or bench fewer samples (--samples)")
        raise RuntimeFailure(f"{label}: the worker failed while {_doing(phase)} it: {message[1]}", fix="report this as an edge-sdk bug, with the file")
    if returncode < 0:
        name = _signal_name(-returncode)
        if name == "SIGKILL":
            raise RuntimeFailure(f"{label}: the worker was killed (SIGKILL) while {_doing(phase)} it{limit_note}; "
                                 "most often the kernel's out-of-memory killer", fix="free memory, or bench fewer samples (--samples)")
        if limits.memory_limit_bytes and name in CRASH_SIGNALS:
            raise RuntimeFailure(f"{label}: the runtime crashed ({name}) while {_doing(phase)} it{limit_note}; it probably ran out of memory",
                                 fix="raise --memory-limit")
        raise RuntimeFailure(f"{label}: the runtime crashed ({name}) while {_doing(phase)} it",
                             fix="the file is probably corrupt or not supported by this runtime: check it with `edge-sdk inspect`, convert it again")
    tail = "\n".join(log_tail.splitlines()[-5:]) or "(no output)"
    raise RuntimeFailure(f"{label}: the worker exited with status {returncode} while {_doing(phase)} it without a result{limit_note}:\n{tail}")


def _doing(phase: str) -> str:
    return {"starting": "starting the worker for", "loading": "loading", "running": "running"}.get(phase, phase)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()


def _reap(process: subprocess.Popen, grace_s: float = 10.0) -> int:
    try:
        return process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _stop(process)  # answered but stuck in a runtime's teardown: the answer stands
        return 0


def _child_env() -> dict[str, str]:
    """This process's environment, with the folders holding edge_sdk and targets first on PYTHONPATH."""
    import targets

    roots = dict.fromkeys(str(Path(module.__file__).resolve().parents[1]) for module in (sys.modules["edge_sdk"], targets))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*roots, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


# --- the child -------------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: the kernel sends this process SIGKILL when its parent dies (a killed bench leaves no worker)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child_main(fd: int) -> int:
    import faulthandler
    import importlib
    import resource
    import traceback

    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    faulthandler.enable()  # a Python stack in the log on SIGSEGV; the process still dies by the signal
    send = Connection(fd, readable=False)
    request: WorkerRequest = pickle.load(sys.stdin.buffer)
    if request.memory_limit_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (request.memory_limit_bytes, request.memory_limit_bytes))
    phase: Callable[[str], None] = lambda name: send.send(("phase", name))
    try:
        module_name, function_name = request.target.split(":")
        value = getattr(importlib.import_module(module_name), function_name)(request.payload, phase)
        send.send(("ok", value))
    except EdgeSdkError as error:
        send.send(("error", type(error), error.message, error.fix))
    except MemoryError as error:
        send.send(("memory", f"MemoryError {error}".strip()))
    except Exception as error:  # reported to the parent with its traceback; the parent raises RuntimeFailure
        send.send(("failed", f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=-3)}"))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(int(sys.argv[1])))
