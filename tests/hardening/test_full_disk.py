"""A full disk (ENOSPC) on a real 2 MiB tmpfs: a clear error naming the file, a non-zero exit, no partial or
temporary file, and every earlier result intact."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_sdk.checkpoint import partial_path_for
from edge_sdk.errors import OutputWriteError
from edge_sdk.fileio import write_json_atomic
from edge_sdk.results import load_results
from tests.hardening.conftest import copies, mounted_tmpfs, run_cli


@pytest.fixture
def small_disk(tmp_path: Path):
    with mounted_tmpfs(tmp_path / "disk", "size=2m") as mount_point:
        yield mount_point


def _fill(disk: Path, leave_bytes: int) -> None:
    """Fill the disk, leaving about `leave_bytes` free."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    os.truncate(filler, max(0, filler.stat().st_size - leave_bytes))


def test_an_atomic_write_on_a_full_disk_raises_a_clear_error_and_leaves_nothing(small_disk):
    _fill(small_disk, 0)
    with pytest.raises(OutputWriteError, match=f"cannot write {small_disk / 'results.json'}: No space left on device") as raised:
        write_json_atomic(small_disk / "results.json", {"results": ["x" * 100_000]})
    assert raised.value.exit_code == 12 and "free disk space" in str(raised.value)
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_a_bench_on_a_full_disk_keeps_earlier_results_and_names_what_did_not_finish(small_disk, tmp_path, sine_npz, hello_world):
    artifacts = copies(hello_world, tmp_path / "artifacts", ["a.tflite", "b.tflite", "c.tflite"])
    earlier = small_disk / "earlier.json"
    assert run_cli("bench", artifacts[0], "--data", sine_npz, "--runs", "2000", "-o", earlier, "--quiet").returncode == 0
    earlier_bytes = earlier.read_bytes()
    _fill(small_disk, 1_000_000)
    large = small_disk / "large.json"  # one result of 20 000 latencies is ~0.5 MB: the second one does not fit
    completed = run_cli("bench", *artifacts, "--data", sine_npz, "--runs", "20000", "--warmup", "0", "-o", large, "--quiet")
    assert completed.returncode == 12, completed.stderr
    assert f"cannot write {partial_path_for(large)}: No space left on device" in completed.stderr
    assert "1 of 3 artifact(s) finished" in completed.stderr and "not finished: b.tflite, c.tflite" in completed.stderr
    assert "nothing partial" not in completed.stderr  # it was kept in the .partial file: the message says so, once
    assert earlier.read_bytes() == earlier_bytes and load_results(earlier)["results"][0]["status"] == "ok"
    kept = load_results(partial_path_for(large))["results"]
    assert [r["artifact"]["name"] for r in kept] == ["a.tflite"]
    assert not large.exists() and not [p for p in small_disk.iterdir() if p.name.endswith(".tmp")]
