"""The CLI end to end, and every bad input of issue #2: one clear message, a non-zero exit, nothing left behind."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import shared

pytestmark = pytest.mark.slow


def edge_sdk(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edge_sdk", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def _single_error_line(result):
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_convert_bench_inspect_end_to_end(tmp_path, digits_keras, digits_npz):
    train, test = digits_npz
    out = tmp_path / "m_int8.tflite"
    converted = edge_sdk("convert", digits_keras, "--to", "tflite", "--quant", "int8", "--calib", train, "--calib-samples", "100",
                         "--scale", "1/16", "--layout", "NHWC", "-o", out)
    assert converted.returncode == 0, converted.stderr
    assert "wrote" in converted.stdout and "validation passed" in converted.stdout
    assert out.exists() and (tmp_path / "m_int8.tflite.manifest.json").exists()

    inspected = edge_sdk("inspect", out)
    assert inspected.returncode == 0
    assert "int8" in inspected.stdout and "zero point" in inspected.stdout and "CONV_2D" in inspected.stdout and "{" not in inspected.stdout
    assert "calibration: 100 samples" in inspected.stdout
    as_json = json.loads(edge_sdk("inspect", out, "--json").stdout)
    assert as_json["tflite"]["io"]["inputs"][0]["dtype"] == "int8"

    # The preprocessing comes from the manifest: no --scale needed at bench time.
    results_path = tmp_path / "results.json"
    benched = edge_sdk("bench", out, "--reference", digits_keras, "--data", test, "--runs", "20", "--threads", "1", "-o", results_path)
    assert benched.returncode == 0, benched.stderr
    header = benched.stdout.splitlines()[0]
    for column in ("size KB", "size x fp32", "latency x fp32", "p50", "p50 ±", "p99", "top-1 %", "drop pts", "agree %"):
        assert column in header
    assert re.search(r"\d µs|\d ms", benched.stdout)  # latencies carry their unit
    assert "Verdict" in benched.stdout and "desktop, digits_cnn.keras: " in benched.stdout  # a pick or "nothing qualifies"
    document = json.loads(results_path.read_text())
    assert document["schema_version"] == "1.1" and document["results"][0]["accuracy"]["top1"] > 0.9

    again = edge_sdk("bench", out, "--data", test, "--runs", "5", "-o", results_path)
    assert again.returncode == 8 and "--overwrite" in _single_error_line(again)
    assert json.loads(results_path.read_text()) == document
    quiet = edge_sdk("bench", out, "--data", test, "--runs", "5", "--json")
    assert json.loads(quiet.stdout)["results"][0]["status"] == "ok"


def test_mnist_lstm_cli_acceptance(tmp_path):
    lstm = shared("tflite_micro/mnist_lstm")
    result = edge_sdk("bench", lstm / "trained_lstm_int8.tflite", "--reference", lstm / "trained_lstm.tflite",
                      "--data", shared("mnist/mnist_test.npz"), "--scale", "1/255", "--reset-state", "--runs", "20", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)["results"][0]
    assert abs(record["accuracy"]["top1"] - 0.985) < 0.005 and abs(record["reference"]["accuracy"]["top1"] - 0.985) < 0.005
    assert record["reference"]["fidelity"]["top1_agreement"] > 0.99


BAD_INPUTS = [
    # (name, make files -> args, exit code, words the message must contain)
    ("missing model", lambda d, m, n: ["convert", d / "nope.keras", "-o", d / "o.tflite"], 3, ["nope.keras", "does not exist"]),
    ("not a model", lambda d, m, n: ["convert", _write(d / "notes.txt", b"hello"), "-o", d / "o.tflite"], 3, ["notes.txt", "not a model file"]),
    ("truncated keras", lambda d, m, n: ["convert", _write(d / "cut.keras", m.read_bytes()[:4000]), "-o", d / "o.tflite"], 3, ["cut.keras", "truncated or corrupt"]),
    ("wrong calib shape", lambda d, m, n: ["convert", m, "--quant", "int8", "--calib", _npz(d / "c.npz", x=np.random.default_rng(0).random((5, 28, 28), np.float32)), "-o", d / "o.tflite"], 4, ["c.npz", "(8, 8, 1)"]),
    ("wrong calib dtype", lambda d, m, n: ["convert", m, "--quant", "int8", "--calib", _npz(d / "c.npz", x=np.array([["a"] * 64] * 3)), "-o", d / "o.tflite"], 4, ["c.npz", "not a numeric type"]),
    ("zero samples", lambda d, m, n: ["convert", m, "--quant", "int8", "--calib", _npz(d / "c.npz", x=np.zeros((0, 8, 8), np.float32)), "-o", d / "o.tflite"], 4, ["c.npz", "0 samples"]),
    ("nan in calib", lambda d, m, n: ["convert", m, "--quant", "int8", "--calib", _npz(d / "c.npz", x=np.full((4, 8, 8), np.nan, np.float32)), "-o", d / "o.tflite"], 4, ["c.npz", "NaN or Inf"]),
    ("label count", lambda d, m, n: ["bench", n, "--data", _npz(d / "e.npz", x=np.zeros((6, 8, 8), np.float32), y=np.zeros(4)), "--runs", "2"], 4, ["e.npz", "6 samples but 4 labels"]),
    ("truncated tflite", lambda d, m, n: ["bench", _write(d / "cut.tflite", n.read_bytes()[:600]), "--data", _npz(d / "e.npz", x=np.zeros((2, 8, 8), np.float32)), "--runs", "2"], 3, ["cut.tflite"]),
    ("int8 without calib", lambda d, m, n: ["convert", m, "--quant", "int8", "-o", d / "o.tflite"], 2, ["needs calibration data", "--calib"]),
    ("unknown mode", lambda d, m, n: ["convert", m, "--quant", "int3", "-o", d / "o.tflite"], 2, ["int3", "fp32"]),
]


def _write(path, data):
    path.write_bytes(data)
    return path


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(("name", "make_args", "exit_code", "words"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gives_one_clear_error_and_no_partial_artifact(tmp_path, digits_keras, digits_artifacts, name, make_args, exit_code, words):
    work = tmp_path / "work"
    work.mkdir()
    args = make_args(work, digits_keras, digits_artifacts["fp32"])
    before = {p.name for p in work.iterdir()}
    result = edge_sdk(*args, cwd=work)  # `work` is the working directory too: third-party scratch files must not land there
    assert result.returncode == exit_code, (result.returncode, result.stderr)
    message = _single_error_line(result)
    for word in words:
        assert word in message, message
    assert {p.name for p in work.iterdir()} == before, "a failed command must not leave files behind"
