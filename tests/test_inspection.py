import pytest

from edge_sdk.inspection import inspect_artifact
from edge_sdk.tables import inspection_text
from tests.conftest import shared


def test_inspect_tflite_int8_shows_quantization_and_ops(digits_artifacts):
    info = inspect_artifact(digits_artifacts["int8"])
    tflite = info["tflite"]
    assert tflite["io"]["inputs"][0]["dtype"] == "int8" and tflite["io"]["inputs"][0]["quantization"]["scale"] > 0
    assert tflite["integer_op_share"] == 1.0 and tflite["ops"]["CONV_2D"] == 2
    assert info["manifest"]["mode"] == "int8"
    text = inspection_text(info)
    assert "scale=" in text and "integer compute ops: 100%" in text


def test_inspect_onnx_shows_opset_ops_and_io():
    info = inspect_artifact(shared("onnx_zoo_mnist/model.onnx"))
    onnx = info["onnx"]
    assert onnx["opset"] == 1 and onnx["ops"]["Conv"] == 2 and onnx["integer_op_share"] == 0.0
    assert onnx["io"]["inputs"][0]["shape"] == [1, 1, 28, 28]
    assert info["manifest"] is None
    text = inspection_text(info)
    assert "opset 1" in text and "manifest: none" in text


def test_inspect_quantized_onnx(tmp_path, digits_keras, digits_npz):
    import edge_sdk
    from tests.conftest import DIGITS_PREPROCESS

    artifact = edge_sdk.convert(digits_keras, tmp_path / "m_int8.onnx", to="onnx", mode="int8", calibration=digits_npz[0],
                                calibration_samples=50, preprocess=DIGITS_PREPROCESS)
    onnx = inspect_artifact(artifact.path)["onnx"]
    assert onnx["ops"].get("QuantizeLinear", 0) > 0 and onnx["integer_op_share"] > 0.5
    assert onnx["integer_op_share"] == pytest.approx(artifact.manifest.integer_op_share)
