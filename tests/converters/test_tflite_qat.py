"""A tfmot QAT model converts to full int8 with its learned ranges and no calibration data (issue #6)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def qat_model(tmp_path_factory, digits_npz):
    import tensorflow_model_optimization as tfmot
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    with np.load(digits_npz[0]) as data:
        x, y = (data["x"][..., None] / 16.0).astype(np.float32), data["y"]
    base = tf_keras.Sequential([
        tf_keras.Input((8, 8, 1)), tf_keras.layers.Conv2D(8, 3, activation="relu"), tf_keras.layers.Flatten(),
        tf_keras.layers.Dense(32, activation="relu"), tf_keras.layers.Dense(10),
    ])
    qat = tfmot.quantization.keras.quantize_model(base)
    qat.compile("adam", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x, y, epochs=3, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("qat") / "qat.h5"
    qat.save(path)
    return path, qat


def test_qat_model_converts_to_int8_from_learned_ranges(tmp_path, qat_model, digits_npz):
    import edge_sdk
    from targets.runners.litert import LiteRTRunner

    path, qat = qat_model
    artifact = edge_sdk.convert(path, tmp_path / "qat_int8.tflite", mode="int8", calibration=None, validation_data=digits_npz[1], preprocess={"scale": 1 / 16, "layout": "NHWC"})
    manifest = artifact.manifest.to_dict()
    assert manifest["calibration"] is None and manifest["quantization_ranges"].startswith("learned")
    assert manifest["integer_op_share"] == 1.0
    assert manifest["inputs"][0]["dtype"] == "int8"

    with np.load(digits_npz[1]) as data:
        x = (data["x"][..., None] / 16.0).astype(np.float32)[:200]
    fake_quant_outputs = qat.predict(x, verbose=0)
    with LiteRTRunner(artifact.path) as runner:
        name = runner.inputs[0].name
        int8_outputs = np.concatenate([next(iter(runner.infer({name: sample[None]}).values())) for sample in x])
    output_scale = manifest["outputs"][0]["quantization"]["scale"]
    # The int8 model reproduces the QAT model's fake-quant arithmetic to within a couple of output steps.
    assert np.abs(int8_outputs - fake_quant_outputs).max() <= 3 * output_scale
    assert (int8_outputs.argmax(1) == fake_quant_outputs.argmax(1)).mean() >= 0.99
