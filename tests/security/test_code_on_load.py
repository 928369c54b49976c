"""Model files that carry code are refused before any framework reads them, unless --trust-model: a tf_keras `.h5`
whose Lambda layer calls os.system (the hostile review's hole), a Keras 3 model in a `.h5`, a renamed `.keras`,
and a SavedModel holding a tf.py_function op. Each refusal: exit 3, one message naming the layer or op and the fix,
no traceback, no file written, and the code never ran (its marker file stays absent)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.hardening.conftest import assert_refused, files_under, run_cli_in

pytest.importorskip("tf_keras")

# What the hostile model runs on load: os.system touching a marker file named by the environment.
BUILD_LAMBDA_H5 = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tf_keras
inputs = tf_keras.Input((1,))
hidden = tf_keras.layers.Dense(4, name="hidden")(inputs)
hostile = tf_keras.layers.Lambda(lambda t: t if __import__("os").system('touch "$EDGE_SDK_TEST_MARKER"') == 0 else t, name="hostile")(hidden)
tf_keras.Model(inputs, tf_keras.layers.Dense(1)(hostile)).save(sys.argv[1])
"""

BUILD_KERAS3_H5 = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2)])
model.save(sys.argv[1])
model.save(sys.argv[2])
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    paths = {"lambda": folder / "hostile.h5", "keras3_h5": folder / "k3.h5", "keras": folder / "k3.keras"}
    env = {**os.environ, "EDGE_SDK_TEST_MARKER": str(folder / "built-marker")}
    subprocess.run([sys.executable, "-c", BUILD_LAMBDA_H5, paths["lambda"]], check=True, env=env, capture_output=True)
    subprocess.run([sys.executable, "-c", BUILD_KERAS3_H5, paths["keras3_h5"], paths["keras"]], check=True, env=env, capture_output=True)
    renamed = folder / "renamed.h5"
    renamed.write_bytes(paths["keras"].read_bytes())
    paths["renamed"] = renamed
    return paths


@pytest.fixture
def work(tmp_path: Path) -> Path:
    np.savez(tmp_path / "data.npz", x=np.linspace(0.0, 1.0, 40, dtype=np.float32)[:, None])
    (tmp_path / "out").mkdir()
    return tmp_path


LAMBDA_REFUSED = ("hostile.h5: layer 'hostile' (Lambda) carries Python code", "--trust-model")


@pytest.mark.parametrize("command", ["convert", "bench", "check-calib"])
def test_a_lambda_h5_is_refused_before_loading_and_its_code_never_runs(models, work, command):
    marker = work / "ran-marker"
    arguments = {
        "convert": ["convert", models["lambda"], "--to", "tflite", "-o", work / "out" / "m.tflite"],
        "bench": ["bench", work / "data.npz", "--data", work / "data.npz", "--reference", models["lambda"], "-o", work / "out" / "r.json"],
        "check-calib": ["check-calib", work / "data.npz", "--data", work / "data.npz", "--model", models["lambda"]],
    }[command]
    before = files_under(work)
    completed = run_cli_in(work, *arguments, env={"EDGE_SDK_TEST_MARKER": str(marker)})
    assert_refused(completed, 3, *LAMBDA_REFUSED)
    assert not marker.exists(), "the Lambda's code ran"
    assert files_under(work) == before  # nothing written, in the output folder or the working directory


def test_trust_model_loads_it_and_then_its_code_does_run(models, work):
    """The flag is the one way in, and it really is a way in (the marker proves the refusal was not a broken model)."""
    from edge_sdk.model_safety import trusting_model_code
    from edge_sdk.models import load_model

    marker = work / "ran-marker"
    os.environ["EDGE_SDK_TEST_MARKER"] = str(marker)
    try:
        with trusting_model_code():
            loaded = load_model(models["lambda"])
        loaded.model(np.zeros((1, 1), np.float32))
    finally:
        del os.environ["EDGE_SDK_TEST_MARKER"]
    assert marker.exists()


@pytest.mark.parametrize("model, fragments", [
    ("keras3_h5", ["k3.h5 was saved by Keras 3", "model.save('model.keras')"]),
    ("renamed", ["renamed.h5 is a Keras 3 .keras archive, not an HDF5 file (renamed?)", "rename it to renamed.keras"]),
])
def test_keras3_files_named_h5_get_a_message_that_says_what_they_are(models, work, model, fragments):
    before = files_under(work)
    completed = run_cli_in(work, "convert", models[model], "-o", work / "out" / "m.tflite")
    assert_refused(completed, 3, *fragments)
    assert files_under(work) == before


def test_a_saved_model_with_a_py_function_op_is_refused(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from edge_sdk.errors import ModelFileError
    from edge_sdk.models import load_model

    class WithPyFunction(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32)])
        def __call__(self, x):
            return {"y": tf.py_function(lambda t: t * 2.0, [x], tf.float32)}

    module = WithPyFunction()
    folder = tmp_path / "pyfunc_saved_model"
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.__call__})
    with pytest.raises(ModelFileError, match=r"EagerPyFunc.*calls Python code that is not in the file"):
        load_model(folder)
