"""Every command's `--json` stdout parses as JSON, with stderr thrown away: nothing a framework prints (TF's
"Saved artifact at ...", a runtime's log line) reaches stdout. One test per command, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DIGITS_PREPROCESS

pytestmark = pytest.mark.slow


def json_stdout(*args: object) -> object:
    """Run `edge-sdk ARGS --json` with stderr discarded; its stdout must be one JSON document."""
    done = subprocess.run([sys.executable, "-m", "edge_sdk", *map(str, args), "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, timeout=900)
    assert done.returncode in (0, 4, 10), f"exit {done.returncode}; stdout: {done.stdout[-2000:]}"
    return json.loads(done.stdout)


PREPROCESS = ("--scale", "1/16", "--layout", "NHWC")


def test_convert_json(tmp_path, digits_keras, digits_npz):
    document = json_stdout("convert", digits_keras, "--to", "tflite", "--quant", "int8", "--calib", digits_npz[0], "--calib-samples", "30", *PREPROCESS, "-o", tmp_path / "m.tflite")
    assert document["manifest"]["mode"] == "int8"


def test_convert_to_onnx_json(tmp_path, digits_keras, digits_npz):
    document = json_stdout("convert", digits_keras, "--to", "onnx", "--quant", "fp32", "--validate-data", digits_npz[1], *PREPROCESS, "-o", tmp_path / "m.onnx")
    assert document["manifest"]["format"] == "onnx"


def test_bench_json(digits_artifacts, digits_keras, digits_npz):
    document = json_stdout("bench", digits_artifacts["fp32"], digits_artifacts["int8"], "--reference", digits_keras, "--data", digits_npz[1], "--runs", "3", "--samples", "40")
    assert [result["reference"]["cache"] for result in document["results"]] == ["computed", "reused"]


def test_inspect_json(digits_artifacts):
    assert json_stdout("inspect", digits_artifacts["int8"])["kind"] == "tflite"


def test_debug_json(digits_artifacts, digits_keras, digits_npz):
    assert "debug" in json_stdout("debug", digits_artifacts["int8"], "--reference", digits_keras, "--data", digits_npz[1], "--samples", "20")


def test_check_calib_json_with_the_sufficiency_estimate(digits_keras, digits_npz):
    # The estimate converts with TensorFlow, which prints "Saved artifact at ..." on stdout: it must not reach ours.
    document = json_stdout("check-calib", digits_npz[0], "--data", digits_npz[1], "--reference", digits_keras, "--calib-samples", "20", "--subsets", "2", *PREPROCESS)
    assert "sufficiency" in document


def test_targets_json():
    assert any(profile["name"] == "desktop" for profile in json_stdout("targets"))


def test_report_json(digits_artifacts, digits_keras, digits_npz, tmp_path):
    results = tmp_path / "results.json"
    subprocess.run([sys.executable, "-m", "edge_sdk", "bench", digits_artifacts["fp32"], digits_artifacts["int8"], "--reference", digits_keras,
                    "--data", digits_npz[1], "--runs", "3", "--samples", "40", "-o", results, "--quiet"], check=True, stderr=subprocess.DEVNULL, timeout=900)
    document = json_stdout("report", results)
    assert document["verdict"]["picks"][0]["target"] == "desktop" and [row["number"] for row in document["rows"]] == [1, 2]
    assert document["rows"][0]["latency_ratio_to_float"] == 1.0
    assert not (tmp_path / "report.html").exists()  # --json prints instead of writing
    written = subprocess.run([sys.executable, "-m", "edge_sdk", "report", results], capture_output=True, text=True, timeout=300)
    assert written.returncode == 0 and (tmp_path / "report.html").exists()  # no -o: report.html beside the results


def test_run_json(digits_artifacts, digits_npz, tmp_path):
    with np.load(digits_npz[1]) as arrays:
        x = arrays["x"][:8].astype(np.float32)
    np.savez(tmp_path / "inputs.npz", x=(x * DIGITS_PREPROCESS["scale"])[..., None])
    document = json_stdout("run", digits_artifacts["int8"], "--inputs", tmp_path / "inputs.npz", "--runs", "2")
    assert document["results"][0]["status"] == "ok"
    assert not list(tmp_path.glob("*.json"))  # nothing written without -o


def test_pipeline_json(tmp_path, digits_keras, digits_npz):
    config = tmp_path / "edge.yaml"
    config.write_text(
        f"version: 1\noutput: out\ndata: {{evaluation: {digits_npz[1]}, calibration: {digits_npz[0]}}}\n"
        f"preprocess: {{scale: 0.0625, layout: NHWC}}\nmodels:\n  cnn: {{path: {digits_keras}}}\nformats: {{tflite: [fp32]}}\n"
        "targets:\n  desktop: {kind: desktop}\nbench: {runs: 3, warmup: 0}\n"
    )
    document = json_stdout("pipeline", config)
    assert document["rows"][0]["artifact"] == "cnn_fp32.tflite" and Path(document["files"]["html"]).exists()
