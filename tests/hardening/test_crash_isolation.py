"""Crash isolation (edge_sdk.isolation): each artifact loads and runs in a worker process, so a native crash, an
out-of-memory failure or kill, and a hang become error records naming the artifact, and the bench goes on."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import edge_sdk
from edge_sdk.bench import BenchSettings
from edge_sdk.results import load_results
from tests.hardening.conftest import copies, require_a_crash, run_cli, worker_pids


def test_a_segfaulting_model_is_an_error_record_and_the_other_artifacts_still_run(tmp_path, sine_npz, hello_world, segfaulting_tflite):
    require_a_crash(segfaulting_tflite, sine_npz)  # whether the patched file segfaults depends on the process's heap layout
    first, last = copies(hello_world, tmp_path / "good", ["first.tflite", "last.tflite"])
    results = edge_sdk.benchmark([first, segfaulting_tflite, last], sine_npz, settings=BenchSettings(runs=20, warmup=2))
    assert [r.status for r in results] == ["ok", "error", "ok"]
    assert results[1].error.startswith("crashes.tflite: the runtime crashed (SIGSEGV) while loading it")
    assert results[0].timing["load_ms"] > 0 and len(results[2].timing["latencies_ms"]) == 20
    assert results[2].memory["peak_rss_bytes"] > 0  # the worker's own peak


def test_the_cli_reports_the_crash_and_keeps_the_other_results(tmp_path, sine_npz, hello_world, segfaulting_tflite):
    (good,) = copies(hello_world, tmp_path / "good", ["good.tflite"])
    out = tmp_path / "results.json"
    completed = run_cli("bench", segfaulting_tflite, good, "--data", sine_npz, "--runs", "5", "-o", out, "--quiet")
    assert completed.returncode == 1, completed.stderr
    assert "crashes.tflite: the runtime crashed (SIGSEGV) while loading it" in completed.stderr
    statuses = [r["status"] for r in load_results(out)["results"]]
    assert statuses == ["error", "ok"]


def test_a_memory_limit_too_small_for_the_runtime_is_an_out_of_memory_record(sine_npz, hello_world, tmp_path):
    (good,) = copies(hello_world, tmp_path, ["good.tflite"])
    settings = BenchSettings(runs=5, warmup=1, memory_limit_bytes=100 * 2**20)
    limited, unlimited = edge_sdk.benchmark([hello_world], sine_npz, settings=settings) + edge_sdk.benchmark([good], sine_npz, settings=BenchSettings(runs=5, warmup=1))
    assert limited.status == "error" and "hello_world_float.tflite: ran out of memory under the memory limit of 100 MiB" in limited.error
    assert unlimited.status == "ok"


def test_a_worker_killed_by_sigkill_is_reported_like_an_oom_kill(sine_npz, hello_world, tmp_path):
    """The kernel's OOM killer sends SIGKILL; here the test sends it to the real worker mid-run."""
    (slow,) = copies(hello_world, tmp_path, ["slow.tflite"])
    results: list = []
    thread = threading.Thread(target=lambda: results.extend(edge_sdk.benchmark([slow], sine_npz, settings=BenchSettings(runs=3_000_000, warmup=0, timeout_s=60))))
    thread.start()
    deadline = time.monotonic() + 30
    while not (pids := worker_pids(os.getpid())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pids, "no worker process appeared"
    time.sleep(0.5)
    os.kill(pids[0], signal.SIGKILL)
    thread.join(60)
    assert results[0].status == "error" and "slow.tflite: the worker was killed (SIGKILL)" in results[0].error
    assert "out-of-memory killer" in results[0].error


def test_an_artifact_that_does_not_finish_in_time_is_stopped_and_reported(sine_npz, hello_world, tmp_path):
    """No input is known that makes ai-edge-litert hang; from the parent a hang and a run longer than the timeout
    look the same, so a real run of the real model with far more timed runs than fit in the timeout stands in."""
    slow, quick = copies(hello_world, tmp_path, ["slow.tflite", "quick.tflite"])
    started = time.monotonic()
    timed_out = edge_sdk.benchmark([slow], sine_npz, settings=BenchSettings(runs=50_000_000, warmup=0, timeout_s=3))[0]
    assert time.monotonic() - started < 15
    assert timed_out.status == "error"
    assert "slow.tflite: did not finish within 3 s while running it (timeout); the worker was stopped" in timed_out.error
    assert not worker_pids(os.getpid())
    assert edge_sdk.benchmark([quick], sine_npz, settings=BenchSettings(runs=5, warmup=1, timeout_s=30))[0].status == "ok"


def test_a_crashing_reference_is_named_and_the_artifact_results_are_kept(tmp_path, sine_npz, hello_world, segfaulting_tflite):
    """The reference runs in a worker process too: its crash is an error of each artifact's comparison, while the
    artifacts' own measurements stay in the results file (exit 1)."""
    require_a_crash(segfaulting_tflite, sine_npz)
    first, second = copies(hello_world, tmp_path / "good", ["first.tflite", "second.tflite"])
    out = tmp_path / "out" / "results.json"
    completed = run_cli("bench", first, second, "--data", sine_npz, "--reference", segfaulting_tflite, "--runs", "5", "-o", out, "--quiet")
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    assert "first.tflite: reference crashes.tflite: " in completed.stderr
    results = load_results(out)["results"]
    assert [r["status"] for r in results] == ["error", "error"]
    assert all(len(r["timing"]["latencies_ms"]) == 5 and r["reference"] is None for r in results)  # the measurements are kept
    if "the runtime crashed (SIGSEGV) while loading it" not in completed.stderr:
        # The patched file reads past its buffers; in the reference's worker the heap may be laid out so that it fails
        # to prepare instead of crashing. The error path was checked above, the crash path was not.
        pytest.skip("not run here: the patched model failed to prepare in the reference worker instead of crashing it this time")
    assert completed.stderr.count("the runtime crashed") == 2  # one worker crash, remembered for the second artifact


def test_edge_sdk_run_names_a_crashing_model(tmp_path, sine_npz, segfaulting_tflite):
    require_a_crash(segfaulting_tflite, sine_npz)
    out = tmp_path / "out.json"
    completed = run_cli("run", segfaulting_tflite, "--inputs", sine_npz, "-o", out, "--runs", "2")
    assert completed.returncode == 7, completed.stderr
    assert "Traceback" not in completed.stderr
    assert "crashes.tflite: the runtime crashed (SIGSEGV) while loading it" in completed.stderr
    assert not out.exists()
