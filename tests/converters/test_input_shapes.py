"""`convert --input-shape NAME:DIMS` writes an artifact whose inputs have those dims (ONNX in every mode, TFLite from
Keras and SavedModel), and its manifest says so; checked on the written files with bare ONNX Runtime / LiteRT."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edge_sdk.api import convert
from edge_sdk.artifact import load_artifact
from edge_sdk.errors import UsageError
from tests.dynamic_models import FIXED_SHAPE, write_dynamic_onnx

FIXED = FIXED_SHAPE


@pytest.fixture(scope="module")
def dynamic_onnx(tmp_path_factory):
    """x [N,3,H,W] (symbolic dims) -> y [N,4] (tests/dynamic_models.py), and calibration data at 3x12x20."""
    return write_dynamic_onnx(tmp_path_factory.mktemp("dyn_onnx"))


@pytest.fixture(scope="module")
def dynamic_keras(tmp_path_factory):
    """A Keras 3 model on image [N,H,W,3] with dynamic H and W, saved as .keras and exported as a SavedModel."""
    import keras

    folder = tmp_path_factory.mktemp("dyn_keras")
    keras.utils.set_random_seed(0)
    image = keras.Input(shape=(None, None, 3), name="image")
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, padding="same", activation="relu")(image))
    model = keras.Model(image, keras.layers.Dense(2, activation="softmax")(features))
    model.save(folder / "dyn.keras")
    model.export(str(folder / "dyn_savedmodel"), verbose=False)
    np.savez(folder / "calib.npz", x=np.random.default_rng(1).random((16, 12, 20, 3)).astype(np.float32))
    return folder


@pytest.mark.parametrize("mode", ["fp32", "fp16", "dynamic", "int8"])
def test_onnx_artifact_inputs_take_the_given_dims(dynamic_onnx, mode, tmp_path):
    import onnxruntime as ort

    source, calibration = dynamic_onnx
    artifact = convert(source, tmp_path / f"fixed_{mode}.onnx", to="onnx", mode=mode, calibration=calibration, input_shapes={"x": FIXED})
    session = ort.InferenceSession(str(artifact.path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == FIXED
    assert session.get_outputs()[0].shape == [1, 4]
    manifest = load_artifact(artifact.path).manifest
    assert manifest.inputs[0].shape == FIXED and manifest.outputs[0].shape == [1, 4]
    assert manifest.details["input_shapes_fixed"] == {"x": {"shape": FIXED, "source_shape": [None, 3, None, None], "fixed_by": "--input-shape"}}
    # It runs at those dims, and agrees with the dynamic source there.
    x = np.random.default_rng(2).random(FIXED).astype(np.float32)
    source_y = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(session.run(None, {"x": x})[0], source_y, atol=0.05 if mode in ("int8", "dynamic") else 2e-3)
    assert manifest.validation["status"] == "passed"


def test_without_input_shape_the_onnx_artifact_keeps_its_dynamic_dims(dynamic_onnx, tmp_path):
    import onnxruntime as ort

    source, _ = dynamic_onnx
    with pytest.raises(UsageError, match="dynamic dimension"):  # H and W need a size to convert at all
        convert(source, tmp_path / "no_shape.onnx", to="onnx", mode="fp32")
    assert not (tmp_path / "no_shape.onnx").exists()
    artifact = convert(source, tmp_path / "batch_free.onnx", to="onnx", mode="fp32", input_shapes={"x": [2, 3, 12, 20]})
    assert ort.InferenceSession(str(artifact.path), providers=["CPUExecutionProvider"]).get_inputs()[0].shape == [2, 3, 12, 20]


def test_input_shape_that_does_not_fit_is_refused_and_writes_nothing(dynamic_onnx, tmp_path):
    source, _ = dynamic_onnx
    result = subprocess.run([sys.executable, "-m", "edge_sdk.cli", "convert", str(source), "--to", "onnx", "-o", str(tmp_path / "bad.onnx"),
                             "--input-shape", "x:1,4,12,20"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "does not fit input 'x'" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source_name", ["dyn.keras", "dyn_savedmodel"])
@pytest.mark.parametrize("mode", ["fp32", "int8"])
def test_tflite_from_keras_and_savedmodel_has_the_given_dims(dynamic_keras, source_name, mode, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    shape = [1, 12, 20, 3]
    artifact = convert(dynamic_keras / source_name, tmp_path / f"fixed_{mode}.tflite", to="tflite", mode=mode,
                       calibration=dynamic_keras / "calib.npz", input_shapes={"image": shape})
    interpreter = Interpreter(model_path=str(artifact.path))
    detail = interpreter.get_input_details()[0]
    assert list(detail["shape"]) == shape and list(detail["shape_signature"]) == shape  # no -1 left: fixed in the file
    manifest = load_artifact(artifact.path).manifest
    assert manifest.inputs[0].shape == shape
    assert manifest.details["input_shapes_fixed"]["image"] == {"shape": shape, "source_shape": [None, None, None, 3], "fixed_by": "--input-shape"}
    assert manifest.validation["status"] == "passed"
    assert "VAR_HANDLE" not in manifest.ops  # the weights are in the file


def test_cli_convert_keras_to_onnx_with_input_shape(dynamic_keras, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "fixed.onnx"
    result = subprocess.run([sys.executable, "-m", "edge_sdk.cli", "convert", str(dynamic_keras / "dyn.keras"), "--to", "onnx", "-o", str(out),
                             "--input-shape", "image:1,12,20,3", "--calib", str(dynamic_keras / "calib.npz"), "--json"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)
    assert ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).get_inputs()[0].shape == [1, 12, 20, 3]
