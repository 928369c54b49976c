"""`pip install edge-sdk[pi]` is enough for the on-device runner: a fresh venv with only that runs an int8 .tflite
and an int8 .onnx, and TensorFlow is not importable there."""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DIGITS_PREPROCESS, REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pi_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pi") / "venv"
    venv.EnvBuilder(with_pip=True).create(root)
    python = root / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", REPO / "requirements" / "constraints.txt", f"{REPO}[pi]"],
                   check=True, timeout=600)
    return python


@pytest.fixture(scope="module")
def digits_int8_onnx(tmp_path_factory, digits_keras, digits_npz) -> Path:
    import edge_sdk

    out = tmp_path_factory.mktemp("onnx") / "digits_int8.onnx"
    return edge_sdk.convert(digits_keras, out, to="onnx", mode="int8", calibration=digits_npz[0], preprocess=DIGITS_PREPROCESS).path


def test_tensorflow_torch_and_onnx_are_absent(pi_venv, tmp_path):
    for module in ("tensorflow", "torch", "onnx", "tf2onnx"):
        result = subprocess.run([pi_venv, "-c", f"import {module}"], capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode != 0 and f"No module named '{module}'" in result.stderr, module


@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_runner_runs_int8_models_in_the_pi_venv(pi_venv, kind, digits_artifacts, digits_int8_onnx, digits_npz, tmp_path):
    model = digits_artifacts["int8"] if kind == "tflite" else digits_int8_onnx
    with np.load(digits_npz[1]) as arrays:
        x = arrays["x"][:16].astype(np.float32) * DIGITS_PREPROCESS["scale"]
    np.savez(tmp_path / "inputs.npz", x=np.expand_dims(x, -1))
    result = subprocess.run([pi_venv, "-m", "edge_sdk.runner", str(model), "--inputs", str(tmp_path / "inputs.npz"), "--output", str(tmp_path / "r.json"),
                             "--outputs", str(tmp_path / "o.npz"), "--runs", "3", "--warmup", "1"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "r.json").read_text())["results"][0]
    assert record["status"] == "ok"
    assert record["settings"]["runtime"]["runtime"] == ("litert" if kind == "tflite" else "onnxruntime")
    assert "tensorflow" not in record["environment"]["packages"]
    outputs = np.load(tmp_path / "o.npz")["outputs"]
    assert outputs.shape == (16, 10)
    with np.load(digits_npz[1]) as arrays:
        assert np.mean(outputs.argmax(axis=1) == arrays["y"][:16]) > 0.8
