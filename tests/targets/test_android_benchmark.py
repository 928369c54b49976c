"""The adb path (not run on a device here): command lines and the parser on real benchmark_model output."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_sdk.errors import RuntimeFailure
from targets.android_benchmark import benchmark_model_argv, parse_benchmark_output, split_runs
from targets.profiles import get_profile
from targets.transport.adb import AdbTransport

FIXTURE = Path(__file__).parent / "fixtures" / "benchmark_model_ti_am62x.txt"


def test_benchmark_model_command_line_follows_the_profile():
    profile = get_profile("android-arm64")
    argv = benchmark_model_argv("/data/local/tmp/benchmark_model", "/data/local/tmp/edge-sdk.X/model.tflite", profile, runs=20)
    assert argv == ["/data/local/tmp/benchmark_model", "--graph=/data/local/tmp/edge-sdk.X/model.tflite", "--num_threads=4",
                    "--use_xnnpack=true", "--num_runs=20", "--warmup_runs=1"]
    assert "--use_xnnpack=false" in benchmark_model_argv("b", "g", profile, xnnpack=False, threads=1)


def test_adb_command_lines():
    transport = AdbTransport("adb://R58M123ABC")
    transport._workdir = "/data/local/tmp/edge-sdk.abc"
    assert transport.adb_argv("push", "m.tflite", "/data/local/tmp/edge-sdk.abc/model.tflite") == [
        "adb", "-s", "R58M123ABC", "push", "m.tflite", "/data/local/tmp/edge-sdk.abc/model.tflite"]
    assert AdbTransport("adb://").adb_argv("shell", "true") == ["adb", "shell", "true"]


def test_parser_reads_real_benchmark_model_output():
    text = "\n".join(line for line in FIXTURE.read_text().splitlines() if not line.startswith("#"))
    cpu, xnnpack = (parse_benchmark_output(run) for run in split_runs(text))
    assert cpu["timing"]["load_ms"] == pytest.approx(5.579)
    assert cpu["timing"]["first_inference_ms"] == pytest.approx(1357.602)
    assert cpu["timing"]["latency"]["mean_ms"] == pytest.approx(1240.27)
    assert cpu["timing"]["latency"]["p50_ms"] == pytest.approx(1239.807)
    assert cpu["timing"]["latency"]["count"] == 50
    assert cpu["memory"]["overall_mb"] == pytest.approx(109.832)
    assert not cpu["xnnpack_applied"] and xnnpack["xnnpack_applied"]
    assert xnnpack["timing"]["latency"]["mean_ms"] == pytest.approx(899.641)
    assert xnnpack["timing"]["latency"]["min_ms"] == pytest.approx(898.007)


def test_output_without_timings_is_a_clear_error():
    with pytest.raises(RuntimeFailure, match="no 'Inference timings' line"):
        parse_benchmark_output("ERROR: Could not open 'model.tflite'.\nERROR: Failed to load model")
