"""PyTorch models in the pipeline file (edge_sdk.pipeline_config, edge_sdk.pipeline): `path: package.module:factory`
with `weights` and `input_shape`, converted to TFLite and ONNX and benched against the PyTorch model itself.
Real litert-torch, ai-edge-quantizer, ONNX Runtime and torch."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

from edge_sdk.errors import UsageError
from edge_sdk.pipeline_config import load_config

torch = pytest.importorskip("torch")
pytest.importorskip("litert_torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from tests.converters import torch_nets  # noqa: E402

FACTORY = "tests.converters.torch_nets:digits_cnn"


def write_config(folder, document):
    path = folder / "edge.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture(scope="module")
def trained(digits_npz):
    return torch_nets.train_digits(torch_nets.digits_cnn(), digits_npz[0])


@pytest.fixture
def workspace(tmp_path, digits_npz, trained):
    shutil.copyfile(digits_npz[0], tmp_path / "train.npz")
    shutil.copyfile(digits_npz[1], tmp_path / "test.npz")
    (tmp_path / "weights").mkdir()
    safetensors_torch.save_file(trained.state_dict(), tmp_path / "weights" / "cnn.safetensors")
    return tmp_path


def document():
    return {
        "version": 1, "output": "out",
        "data": {"evaluation": "test.npz", "calibration": "train.npz"},
        "preprocess": {"scale": 0.0625, "layout": "NCHW"},
        "models": {"cnn": {"path": FACTORY, "weights": "weights/cnn.safetensors", "input_shape": [1, 1, 8, 8]}},
        "formats": {"tflite": ["fp32", "int8"], "onnx": ["int8"]},
        "targets": {"desktop": {"kind": "desktop"}},
        "bench": {"runs": 3, "warmup": 1},
    }


@pytest.mark.parametrize("change, message", [
    (lambda d: d["models"]["cnn"].pop("input_shape"), "models.cnn.input_shape: the PyTorch model tests.converters.torch_nets:digits_cnn needs the example input shape"),
    (lambda d: d["models"]["cnn"].update(input_shape=[1, 0, 8, 8]), "models.cnn.input_shape: must be a list of positive sizes"),
    (lambda d: d["models"]["cnn"].update(weights="weights/missing.safetensors"), "models.cnn.weights: weights/missing.safetensors does not exist"),
    (lambda d: d["models"]["cnn"].update(trust_model="yes"), "models.cnn.trust_model: must be true or false, not 'yes'"),
    (lambda d: d["models"].update(other={"path": "test.npz", "weights": "weights/cnn.safetensors"}), "models.other.weights: weights apply to a PyTorch package.module:factory path"),
    (lambda d: d["models"]["cnn"].update(nhwc_input="yes"), "models.cnn.nhwc_input: must be true or false, not 'yes'"),
    (lambda d: d["models"].update(other={"path": "test.npz", "nhwc_input": True}), "models.other.nhwc_input: applies to a PyTorch package.module:factory (benched against the PyTorch model, fed NCHW), not the file"),
])
def test_invalid_pytorch_models_name_file_key_and_problem(workspace, change, message):
    config = document()
    change(config)
    path = write_config(workspace, config)
    with pytest.raises(UsageError) as raised:
        load_config(path)
    assert str(path) in str(raised.value) and message in str(raised.value)
    assert not (workspace / "out").exists()


@pytest.mark.slow
def test_a_pytorch_factory_with_weights_goes_to_tflite_and_onnx_benched_against_the_pytorch_model(workspace, trained):
    """With `nhwc_input: true`: the TFLite artifacts take NHWC (what Android camera pipelines feed), the ONNX one
    NCHW as PyTorch does, and each is benched against the PyTorch model fed as it takes its input."""
    from edge_sdk.pipeline import run_pipeline
    from edge_sdk.results import load_results

    config_document = document()
    config_document["models"]["cnn"]["nhwc_input"] = True
    path = write_config(workspace, config_document)
    config = load_config(path)
    assert config.models[0].path.weights == workspace / "weights" / "cnn.safetensors"  # relative to the YAML file
    run = run_pipeline(path)
    assert sorted(run.converted) == ["cnn -> onnx int8", "cnn -> tflite fp32", "cnn -> tflite int8"]
    results = {r["artifact"]["name"]: r for r in load_results(run.files["results"])["results"]}
    with np.load(workspace / "test.npz") as data:
        images, labels = data["x"].astype(np.float32) / 16, data["y"]
    with torch.no_grad():
        float_top1 = float(np.mean(trained(torch.from_numpy(images[:, None])).numpy().argmax(1) == labels))
    assert set(results) == {"cnn_fp32.tflite", "cnn_int8.tflite", "cnn_int8.onnx"}
    shapes = {name: result["artifact"]["io"]["inputs"][0]["shape"] for name, result in results.items()}
    assert shapes == {"cnn_fp32.tflite": [1, 8, 8, 1], "cnn_int8.tflite": [1, 8, 8, 1], "cnn_int8.onnx": [1, 1, 8, 8]}
    for name, result in results.items():
        reference = result["reference"]
        assert result["status"] == "ok" and reference["runtime"]["runtime"] == "pytorch", (name, result.get("error"))
        assert reference["runtime"]["weights"]["kind"] == "safetensors" and reference["accuracy"]["top1"] == pytest.approx(float_top1, abs=1e-12)
        assert abs(reference["accuracy_drop_points"]) <= 1.5, (name, reference["accuracy_drop_points"])
    assert results["cnn_fp32.tflite"]["reference"]["fidelity"]["max_abs_error"] <= 1e-4
    assert {r["reference"]["cache"] for r in results.values()} <= {"computed", "reused"}
    again = run_pipeline(path)  # nothing changed: every conversion and bench from the cache
    assert again.converted == [] and again.benched == [] and len(again.conversions_cached) == 3
