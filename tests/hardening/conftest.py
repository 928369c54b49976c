"""Fixtures for the hardening tests: the real hello_world TFLite model (../shared/data), copies of it to bench
several artifacts quickly, a byte-patched copy that really crashes the TFLite runtime, and the CLI as a child."""

from __future__ import annotations

import os
import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, shared

# Found by a seeded mutation search (bit flips / 4-byte overwrites of hello_world_float.tflite, each candidate
# run in a fresh process): these two overwrites make ai-edge-litert 2.3.0 die with SIGSEGV while building the
# interpreter (Interpreter(...) + allocate_tensors), every time.
SEGFAULT_PATCHES = ((1204, "ffffff7f"), (1972, "ffffffff"))


@pytest.fixture
def sine_npz(tmp_path: Path) -> Path:
    path = tmp_path / "sine.npz"
    np.savez(path, x=np.linspace(0.0, 6.28, 400, dtype=np.float32)[:, None])
    return path


@pytest.fixture
def hello_world() -> Path:
    return shared("tflite_micro/hello_world/hello_world_float.tflite")


def copies(model: Path, folder: Path, names: list[str]) -> list[Path]:
    """Copies of `model` under other names: distinct artifacts of a bench that each run in about the same time."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in names]
    for path in paths:
        shutil.copyfile(model, path)
    return paths


@pytest.fixture
def segfaulting_tflite(tmp_path: Path, hello_world: Path) -> Path:
    data = bytearray(hello_world.read_bytes())
    for offset, patch in SEGFAULT_PATCHES:
        data[offset : offset + len(bytes.fromhex(patch))] = bytes.fromhex(patch)
    path = tmp_path / "crashes.tflite"
    path.write_bytes(bytes(data))
    return path


def edge_sdk_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "edge_sdk", *map(str, args)]


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def run_cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(edge_sdk_command(*args), capture_output=True, text=True, timeout=timeout, env=cli_env(), cwd=REPO)


def worker_pids(parent: int) -> list[int]:
    """Live isolation workers (python -m edge_sdk.isolation) whose parent is `parent`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        state = next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))
        if ppid == parent and "edge_sdk.isolation" in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def run_cli_in(cwd: Path, *args: str | Path, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The CLI as a child started in `cwd` (a folder of the test), so that a stray write to the working directory shows."""
    return subprocess.run(edge_sdk_command(*args), capture_output=True, text=True, timeout=timeout, env={**cli_env(), **(env or {})}, cwd=cwd)


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones too) with its content: compare before and after a failing command."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(Path(folder).rglob("*")) if path.is_file()}


def assert_refused(completed: subprocess.CompletedProcess, exit_code: int, *fragments: str) -> None:
    """The command failed the way a user error must: this exit code, one `error:` message holding every fragment, no traceback."""
    assert completed.returncode == exit_code, (completed.returncode, completed.stderr[-3000:])
    assert "Traceback" not in completed.stderr, completed.stderr[-3000:]
    assert completed.stderr.count("error:") == 1, completed.stderr[-3000:]
    for fragment in fragments:
        assert fragment in completed.stderr, (fragment, completed.stderr[-3000:])


def require_a_crash(model: Path, data: Path) -> None:
    """Skip unless `model` really crashes the runtime in a worker here: the patched file reads memory past its
    buffers, and whether that segfaults depends on the heap layout of the process (path lengths, environment)."""
    import edge_sdk
    from edge_sdk.bench import BenchSettings

    result = edge_sdk.benchmark([model], data, settings=BenchSettings(runs=1, warmup=0))[0]
    if not (result.error or "").startswith(f"{model.name}: the runtime crashed"):
        pytest.skip(f"not run here: {model.name} does not crash ai-edge-litert in this environment ({(result.error or 'it ran').splitlines()[0]})")


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A real tmpfs at `folder` (created here) with mount `options` ("size=2m" for a small disk, "ro,size=1m" for a
    read-only folder), unmounted afterwards; skipped, labelled not run here, where mounting needs a root we lack."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()} (not run here)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
