"""No lost results: a bench interrupted by SIGINT (Ctrl-C) or SIGKILL keeps every finished result in
RESULTS.partial, says what did not finish, and the same command resumes without measuring them again; an
interrupted pipeline resumes from its cache. Existing results are never replaced without --overwrite."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from edge_sdk.checkpoint import partial_path_for
from edge_sdk.results import load_results
from tests.hardening.conftest import cli_env, copies, edge_sdk_command, run_cli, worker_pids

NAMES = ["a.tflite", "b.tflite", "c.tflite", "d.tflite"]
SLOW = ["--runs", "80000", "--warmup", "0", "--quiet"]  # about 1-2 s per artifact on a 2-core machine


def _start(*args: str | Path) -> subprocess.Popen:
    return subprocess.Popen(edge_sdk_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())


def _wait_for_finished(partial: Path, process: subprocess.Popen, count: int = 1, timeout_s: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if partial.exists():
            results = json.loads(partial.read_text())["results"]  # atomic: never half-written
            if len(results) >= count:
                return results
        time.sleep(0.05)
    raise AssertionError(f"no finished result in {partial} (exit {process.poll()})")


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_an_interrupted_bench_keeps_finished_results_and_resumes(tmp_path, sine_npz, hello_world, how):
    artifacts = copies(hello_world, tmp_path / "artifacts", NAMES)
    out = tmp_path / "results.json"
    partial = partial_path_for(out)
    command = ["bench", *artifacts, "--data", sine_npz, "-o", out, *SLOW]
    process = _start(*command)
    finished = _wait_for_finished(partial, process)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=30)

    kept = load_results(partial)["results"]  # valid against the results schema
    assert len(kept) >= len(finished) and all(r["status"] == "ok" for r in kept) and not out.exists()
    if how in (signal.SIGINT, signal.SIGTERM):  # `kill PID` is handled like Ctrl-C
        assert process.returncode == 130
        assert "interrupted while benchmarking" in stderr and f"kept in {partial}" in stderr
        assert "not finished: " + ", ".join(NAMES[len(kept):]) in stderr
        assert "run the same command again to resume" in stderr
    else:
        assert process.returncode == -signal.SIGKILL
    time.sleep(0.3)  # the worker dies with its parent (PR_SET_PDEATHSIG)
    assert not worker_pids(process.pid)

    resumed = run_cli(*command)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed: {len(kept)} result(s) taken from {partial}" in resumed.stderr
    final = load_results(out)["results"]
    assert [r["artifact"]["name"] for r in final] == NAMES and not partial.exists()
    # The finished results were taken as they were, not measured again.
    assert final[: len(kept)] == kept


def test_existing_results_and_foreign_partial_results_are_not_replaced_without_overwrite(tmp_path, sine_npz, hello_world):
    (model,) = copies(hello_world, tmp_path, ["m.tflite"])
    out = tmp_path / "results.json"
    assert run_cli("bench", model, "--data", sine_npz, "--runs", "5", "-o", out, "--quiet").returncode == 0
    before = out.read_bytes()
    again = run_cli("bench", model, "--data", sine_npz, "--runs", "5", "-o", out, "--quiet")
    assert again.returncode == 8 and "already exists" in again.stderr and out.read_bytes() == before

    other = tmp_path / "other.json"
    partial_path_for(other).write_bytes(before.replace(b'"results": [', b'"resume": {"keys": ["an-older-bench"]}, "results": [', 1))
    refused = run_cli("bench", model, "--data", sine_npz, "--runs", "7", "-o", other, "--quiet")
    assert refused.returncode == 8 and "holds 1 finished result(s) of a different bench (m.tflite" in refused.stderr
    fresh = run_cli("bench", model, "--data", sine_npz, "--runs", "7", "-o", other, "--quiet", "--overwrite")
    assert fresh.returncode == 0 and len(load_results(other)["results"][0]["timing"]["latencies_ms"]) == 7


def _pipeline_yaml(tmp_path: Path, keras_model: Path, data: Path) -> Path:
    config = tmp_path / "edge.yaml"
    config.write_text(
        f"output: out\ndata: {{evaluation: {data}, label_key: y, max_samples: 100}}\n"
        f"preprocess: {{scale: 0.0625, layout: NHWC}}\n"
        f"models: {{digits: {{path: {keras_model}, formats: {{tflite: [fp32, fp16, dynamic]}}}}}}\n"
        "bench: {runs: 60000, warmup: 0, threads: 1}\n"
    )
    return config


def test_an_interrupted_pipeline_says_what_did_not_finish_and_resumes_from_its_cache(tmp_path, digits_keras, digits_npz):
    config = _pipeline_yaml(tmp_path, digits_keras, digits_npz[1])
    cache = tmp_path / "out" / "pipeline-cache.json"
    process = _start("pipeline", config, "--quiet")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if cache.exists() and json.loads(cache.read_text()).get("benches"):
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "pipeline interrupted: 4 of 6 steps finished" in stderr and "not finished: digits_fp16.tflite on desktop" in stderr
    assert len(json.loads(cache.read_text())["benches"]) == 1

    resumed = run_cli("pipeline", config, "--json", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["conversions_cached"] == ["digits -> tflite fp32", "digits -> tflite fp16", "digits -> tflite dynamic"]
    assert len(summary["rows"]) == 3 and all(row["status"] == "ok" for row in summary["rows"])
