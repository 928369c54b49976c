"""Memory bombs: `.npz` files of about 1 MB whose arrays inflate to 1 GiB. Declared sizes are checked before anything
is read and samples and labels are streamed, so the bench ends with exit 4 naming the declared size (or, for a
data set that is only large, streams it) while its peak memory stays under 1 GB, measured, under a 6 GB
address-space limit (`ulimit -v`): the fix is not to allocate, not to catch MemoryError."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.hardening.conftest import assert_refused, cli_env, edge_sdk_command, files_under

GiB = 1 << 30
ADDRESS_SPACE_LIMIT_KIB = 6 * 1024 * 1024  # ulimit -v takes KiB
PEAK_LIMIT_BYTES = 1 << 30


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    header = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, shape)
    header += " " * (-(len(header) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1")


def write_bomb(path: Path, arrays: dict[str, tuple[str, tuple[int, ...]] | np.ndarray]) -> Path:
    """An .npz whose members are real arrays or (dtype, shape) headers followed by zeros, deflated as written."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                if isinstance(value, np.ndarray):
                    np.lib.format.write_array(member, value)
                    continue
                descr, shape = value
                member.write(npy_header(descr, shape))
                left, block = int(np.prod(shape)) * np.dtype(descr).itemsize, bytes(1 << 22)
                while left > 0:
                    member.write(block[: min(left, len(block))])
                    left -= len(block)
    assert path.stat().st_size < 3 * 2**20, "a bomb is small on disk"
    return path


def run_limited(cwd: Path, *args: str | Path) -> tuple[subprocess.CompletedProcess, int]:
    """The CLI under `ulimit -v` 6 GB; returns its outcome and the peak RSS of it and its workers, in bytes."""
    command = " ".join(f"'{part}'" for part in edge_sdk_command(*args))
    probe = (
        "import resource, subprocess, sys\n"
        f"done = subprocess.run(['bash', '-c', 'ulimit -v {ADDRESS_SPACE_LIMIT_KIB} && exec ' + sys.argv[1]], capture_output=True, text=True)\n"
        "sys.stdout.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024) + '\\n' + done.stdout)\n"
        "sys.stderr.write(done.stderr)\n"
        "sys.exit(done.returncode)\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe, command], capture_output=True, text=True, timeout=600, env=cli_env(), cwd=cwd)
    peak, _, stdout = completed.stdout.partition("\n")
    return subprocess.CompletedProcess(completed.args, completed.returncode, stdout, completed.stderr), int(peak)


@pytest.fixture
def work(tmp_path: Path, hello_world: Path) -> Path:
    (tmp_path / "out").mkdir()
    (tmp_path / "m.tflite").write_bytes(hello_world.read_bytes())
    return tmp_path


SINE = np.linspace(0.0, 6.28, 100, dtype=np.float32)[:, None]


@pytest.mark.parametrize("arrays, fragments", [
    ({"x": SINE, "y": ("|i1", (GiB,))}, ["bomb.npz has 100 samples but 1073741824 labels", "1 GiB (1073741824 bytes)"]),
    ({"x": ("|u1", (2, GiB // 2))}, ["bomb.npz:x declares samples of shape (536870912,)", "1 GiB (1073741824 bytes) in all"]),
    ({"x": SINE, "y": ("|i1", (100, 10 * 2**20))}, ["labels", "must be one class index per sample (or one-hot rows)", "(100, 10485760)"]),
])
def test_a_bomb_ends_with_exit_4_naming_its_declared_size_and_stays_small(work, arrays, fragments):
    bomb = write_bomb(work / "bomb.npz", arrays)
    before = files_under(work)
    completed, peak = run_limited(work, "bench", work / "m.tflite", "--data", bomb, "--samples", "50", "--runs", "2", "-o", work / "out" / "r.json")
    assert_refused(completed, 4, *fragments)
    assert peak < PEAK_LIMIT_BYTES, f"peak RSS {peak / 2**20:.0f} MiB"
    assert files_under(work) == before


def test_a_data_set_that_is_only_large_is_streamed_with_samples(work):
    """1 GiB of float32 rows the model takes: --samples 50 reads through it in chunks, never holding it."""
    bomb = write_bomb(work / "large.npz", {"x": ("<f4", (GiB // 4, 1))})
    completed, peak = run_limited(work, "bench", work / "m.tflite", "--data", bomb, "--samples", "50", "--runs", "2", "-o", work / "out" / "r.json", "--quiet")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert peak < PEAK_LIMIT_BYTES, f"peak RSS {peak / 2**20:.0f} MiB"
