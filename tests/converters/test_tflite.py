import json

import numpy as np
import pytest

import edge_sdk
from edge_sdk.artifact import manifest_path_for
from edge_sdk.errors import ConversionError, DataError, OutputExistsError, UsageError
from edge_sdk.inspection import analyze_tflite
from tests.conftest import DIGITS_PREPROCESS

pytestmark = pytest.mark.slow


def _no_leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]


@pytest.mark.parametrize("mode", ["fp16", "dynamic", "int16x8"])
def test_other_modes_convert_and_validate(tmp_path, digits_keras, digits_npz, mode):
    artifact = edge_sdk.convert(
        digits_keras, tmp_path / f"m_{mode}.tflite", mode=mode, calibration=digits_npz[0] if mode == "int16x8" else None,
        calibration_samples=50, validation_data=digits_npz[1], preprocess=DIGITS_PREPROCESS,
    )
    assert artifact.manifest.to_dict()["mode"] == mode
    assert artifact.manifest.to_dict()["validation"]["status"] == "passed"
    assert artifact.manifest.to_dict()["validation"]["top1_agreement"] > 0.97
    if mode == "int16x8":
        assert "INT16" in analyze_tflite(artifact.path.read_bytes())["tensor_types"]


def test_int8_manifest_records_everything_needed_to_run_and_reproduce(digits_artifacts, digits_keras, digits_npz):
    manifest = json.loads(manifest_path_for(digits_artifacts["int8"]).read_text())
    assert manifest["format"] == "tflite" and manifest["mode"] == "int8"
    assert manifest["inputs"][0]["dtype"] == "int8" and manifest["outputs"][0]["dtype"] == "int8"
    assert manifest["inputs"][0]["quantization"]["scale"] > 0
    assert manifest["integer_op_share"] == 1.0
    assert manifest["source"]["path"] == str(digits_keras) and len(manifest["source"]["sha256"]) == 64
    assert manifest["preprocess"]["scale"] == pytest.approx(1 / 16) and manifest["preprocess"]["layout"] == "NHWC"
    assert manifest["calibration"]["samples"] == 300 and manifest["calibration"]["path"] == str(digits_npz[0])
    assert manifest["toolchain"]["tensorflow"] == "2.21.0" and "ai-edge-litert" in manifest["toolchain"]
    assert manifest["validation"]["status"] == "passed" and manifest["validation"]["samples"] == 100
    assert "CONV_2D" in manifest["ops"] and manifest["conversion_seconds"] > 0
    fp32 = json.loads(manifest_path_for(digits_artifacts["fp32"]).read_text())
    assert fp32["integer_op_share"] == 0.0 and manifest["size_bytes"] < 0.5 * fp32["size_bytes"]


def test_weightless_conversion_from_tf_saved_model_save_is_refused(tmp_path, digits_keras, digits_npz):
    import keras
    import tensorflow as tf

    model = keras.models.load_model(digits_keras)
    tf.saved_model.save(model, str(tmp_path / "saved_bad"))
    with pytest.raises(ConversionError, match="without its weights") as error:
        edge_sdk.convert(tmp_path / "saved_bad", tmp_path / "bad.tflite", preprocess=DIGITS_PREPROCESS)
    assert "model.export" in str(error.value)
    assert not (tmp_path / "bad.tflite").exists() and not manifest_path_for(tmp_path / "bad.tflite").exists()
    assert _no_leftovers(tmp_path) == []

    model.export(str(tmp_path / "exported"))
    artifact = edge_sdk.convert(tmp_path / "exported", tmp_path / "good.tflite", validation_data=digits_npz[1], preprocess=DIGITS_PREPROCESS)
    assert artifact.manifest.to_dict()["source"]["kind"] == "savedmodel"
    assert artifact.manifest.to_dict()["validation"]["status"] == "passed" and artifact.manifest.to_dict()["validation"]["cosine_mean"] > 0.9999


def test_wrong_calibration_shape_leaves_no_artifact(tmp_path, digits_keras):
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).random((10, 28, 28), np.float32))  # informative data of the wrong shape
    with pytest.raises(DataError, match=r"(?s)calib.npz sample 0 for input .* has shape \(28, 28, 1\).*expects \(8, 8, 1\)"):
        edge_sdk.convert(digits_keras, tmp_path / "m.tflite", mode="int8", calibration=tmp_path / "calib.npz", preprocess=DIGITS_PREPROCESS)
    assert not (tmp_path / "m.tflite").exists() and _no_leftovers(tmp_path) == []


def test_int8_needs_calibration_and_existing_outputs_are_kept(tmp_path, digits_keras, digits_artifacts):
    with pytest.raises(UsageError, match="needs calibration data"):
        edge_sdk.convert(digits_keras, tmp_path / "m.tflite", mode="int8")
    existing = digits_artifacts["fp32"]
    before = existing.read_bytes()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        edge_sdk.convert(digits_keras, existing, mode="fp16")
    assert existing.read_bytes() == before
    with pytest.raises(UsageError, match="not a TFLite mode"):
        edge_sdk.convert(digits_keras, tmp_path / "m.tflite", mode="int4")


def test_qat_model_converts_to_int8(tmp_path, digits_npz):
    import tensorflow_model_optimization as tfmot
    import tf_keras

    with np.load(digits_npz[0]) as data:
        x, y = data["x"][..., None] / 16.0, data["y"]
    base = tf_keras.Sequential([tf_keras.Input((8, 8, 1)), tf_keras.layers.Conv2D(8, 3, activation="relu"), tf_keras.layers.Flatten(), tf_keras.layers.Dense(10)])
    qat = tfmot.quantization.keras.quantize_model(base)
    qat.compile("adam", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x, y, epochs=3, verbose=0)
    qat.save(tmp_path / "qat.h5")
    # QAT models convert with their learned ranges: no calibration data (tests/converters/test_tflite_qat.py).
    artifact = edge_sdk.convert(tmp_path / "qat.h5", tmp_path / "qat_int8.tflite", mode="int8", validation_data=digits_npz[1], preprocess=DIGITS_PREPROCESS)
    assert artifact.manifest.to_dict()["calibration"] is None
    assert artifact.manifest.to_dict()["source"]["quantization_aware"]
    assert artifact.manifest.to_dict()["inputs"][0]["dtype"] == "int8" and artifact.manifest.to_dict()["integer_op_share"] == 1.0
    assert artifact.manifest.to_dict()["validation"]["top1_agreement"] > 0.9
