import json

import numpy as np
import pytest

import edge_sdk
from edge_sdk.artifact import manifest_path_for
from edge_sdk.bench import BenchSettings
from edge_sdk.errors import DataError
from targets.runners.base import RunnerOptions
from tests.conftest import DIGITS_PREPROCESS, shared

pytestmark = pytest.mark.slow
MNIST_NCHW = {"scale": 1 / 255, "layout": "NCHW"}
FAST = BenchSettings(runs=5, warmup=1, runner=RunnerOptions(threads=1))


def test_zoo_mnist_fp32_and_static_int8_on_the_10000_test_images(tmp_path):
    mnist = shared("mnist/mnist_test.npz")
    model = shared("onnx_zoo_mnist/model.onnx")
    fp32 = edge_sdk.convert(model, tmp_path / "zoo.onnx", to="onnx", preprocess=MNIST_NCHW)
    int8 = edge_sdk.convert(model, tmp_path / "zoo_int8.onnx", to="onnx", mode="int8", calibration=mnist, calibration_samples=200, preprocess=MNIST_NCHW)
    assert int8.manifest.to_dict()["details"]["quantization"]["format"] == "QDQ" and int8.manifest.to_dict()["integer_op_share"] == 1.0
    assert int8.manifest.to_dict()["calibration"]["method"] == "MinMax" and "onnxruntime" in int8.manifest.to_dict()["toolchain"]
    results = edge_sdk.benchmark([fp32.path, int8.path], mnist, settings=FAST)
    top1 = {r.artifact["mode"]: r.accuracy["top1"] for r in results}
    assert top1["fp32"] == pytest.approx(0.989, abs=0.002)
    assert top1["fp32"] - top1["int8"] < 0.01


def test_keras_to_onnx_matches_keras_and_int8_stays_within_1_5_points(tmp_path, digits_keras, digits_npz):
    fp32 = edge_sdk.convert(digits_keras, tmp_path / "d.onnx", to="onnx", validation_data=digits_npz[1], preprocess=DIGITS_PREPROCESS)
    assert fp32.manifest.to_dict()["validation"]["against"] == "keras" and fp32.manifest.to_dict()["validation"]["max_abs_error"] <= 1e-5
    int8 = edge_sdk.convert(
        digits_keras, tmp_path / "d_int8.onnx", to="onnx", mode="int8", calibration=digits_npz[0], validation_data=digits_npz[1],
        preprocess=DIGITS_PREPROCESS, quant_types="u8s8", calibration_method="Percentile", exclude_op_types=["Softmax"],
    )
    manifest = json.loads(manifest_path_for(int8.path).read_text())
    assert manifest["details"]["quantization"]["activation_weight_types"] == "u8s8" and manifest["calibration"]["method"] == "Percentile"
    results = edge_sdk.benchmark([fp32.path, int8.path], digits_npz[1], reference=digits_keras, settings=FAST)
    assert all(r.status == "ok" for r in results)
    assert results[0].reference["fidelity"]["max_abs_error"] <= 1e-5
    assert results[1].reference["accuracy_drop_points"] < 1.5


def test_calibration_data_that_does_not_fit_leaves_no_artifact(tmp_path, digits_keras):
    np.savez(tmp_path / "shape.npz", x=np.random.default_rng(0).random((10, 28, 28), np.float32))  # informative data of the wrong shape
    with pytest.raises(DataError, match=r"shape.npz sample 0 .* has shape"):
        edge_sdk.convert(digits_keras, tmp_path / "m.onnx", to="onnx", mode="int8", calibration=tmp_path / "shape.npz", preprocess=DIGITS_PREPROCESS)
    np.savez(tmp_path / "names.npz", a=np.random.default_rng(1).random((10, 8, 8), np.float32), b=np.random.default_rng(2).random((10, 8, 8), np.float32))
    with pytest.raises(DataError, match="the model has inputs .* but .*names.npz has arrays"):
        edge_sdk.convert(digits_keras, tmp_path / "m.onnx", to="onnx", mode="int8", calibration=tmp_path / "names.npz", preprocess=DIGITS_PREPROCESS)
    assert not (tmp_path / "m.onnx").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _train_torch_cnn(digits_train):
    import torch

    torch.manual_seed(0)
    with np.load(digits_train) as data:
        x = torch.from_numpy(data["x"][:, None] / 16.0).float()
        y = torch.from_numpy(data["y"]).long()
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16 * 16, 10)
    )
    optimizer = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(60):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    return net.eval()


def test_pytorch_cnn_exports_quantizes_and_benches_against_its_float_outputs(tmp_path, digits_npz):
    import torch

    net = _train_torch_cnn(digits_npz[0])
    nchw = {"scale": 1 / 16, "layout": "NCHW"}
    shape = {"": [1, 1, 8, 8]}
    fp32 = edge_sdk.convert(net, tmp_path / "t.onnx", to="onnx", input_shapes=shape, validation_data=digits_npz[1], preprocess=nchw)
    assert fp32.manifest.to_dict()["validation"]["against"] == "torch" and fp32.manifest.to_dict()["validation"]["max_abs_error"] <= 1e-5
    assert fp32.manifest.to_dict()["external_data"][0]["path"] == "t.onnx.data" and (tmp_path / "t.onnx.data").exists()
    int8 = edge_sdk.convert(net, tmp_path / "t_int8.onnx", to="onnx", mode="int8", input_shapes=shape, calibration=digits_npz[0], preprocess=nchw)
    example = torch.zeros(1, 1, 8, 8)
    torch.export.save(torch.export.export(net, (example,)), tmp_path / "t.pt2")
    torch.jit.save(torch.jit.trace(net, example), tmp_path / "t_script.pt")
    for source in ("t.pt2", "t_script.pt"):
        artifact = edge_sdk.convert(tmp_path / source, tmp_path / f"{source}.onnx", to="onnx", input_shapes=shape, validation_data=digits_npz[1], preprocess=nchw)
        assert artifact.manifest.to_dict()["validation"]["max_abs_error"] <= 1e-5
    results = edge_sdk.benchmark([fp32.path, int8.path], digits_npz[1], reference=fp32.path, settings=FAST)
    assert results[0].accuracy["top1"] > 0.9 and results[0].reference["fidelity"]["max_abs_error"] == 0
    assert results[1].reference["fidelity"]["top1_agreement"] > 0.95 and results[1].reference["accuracy_drop_points"] < 2
