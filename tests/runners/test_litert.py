import numpy as np
import pytest

from edge_sdk.errors import DataError, ModelFileError, UsageError
from targets.runners import runner_for
from targets.runners.base import IOSpec, RunnerOptions, dequantize, quantize
from targets.runners.litert import LiteRTRunner
from tests.conftest import shared


def test_quantize_round_trip_and_clipping():
    spec = IOSpec("x", (1, 4), np.dtype(np.int8), scale=0.5, zero_point=-3)
    values = np.array([[0.0, 1.0, 1000.0, -1000.0]], np.float32)
    q = quantize(values, spec)
    assert q.dtype == np.int8 and q.tolist() == [[-3, -1, 127, -128]]
    np.testing.assert_allclose(dequantize(q, spec), [[0.0, 1.0, 65.0, -62.5]])


def test_int8_runner_quantizes_inputs_and_loops_over_a_batch(digits_artifacts):
    x = np.random.default_rng(0).random((3, 8, 8, 1)).astype(np.float32)
    with LiteRTRunner(digits_artifacts["int8"], RunnerOptions(threads=1)) as runner:
        assert runner.inputs[0].quantized and runner.inputs[0].shape == (1, 8, 8, 1)
        name = runner.inputs[0].name
        batched = runner.infer({name: x})[runner.outputs[0].name]
        one_by_one = [runner.infer({name: x[i : i + 1]})[runner.outputs[0].name][0] for i in range(3)]
        assert batched.shape == (3, 10) and batched.dtype == np.float32
        np.testing.assert_array_equal(batched, np.stack(one_by_one))
        assert runner.inference_time_s > 0
        with pytest.raises(DataError, match="shape"):
            runner.infer({name: np.zeros((1, 4, 4, 1), np.float32)})


def test_reference_kernels_and_xnnpack_off_are_selectable(digits_artifacts):
    x = np.random.default_rng(1).random((1, 8, 8, 1)).astype(np.float32)
    outputs = {}
    for label, options in {"default": RunnerOptions(), "no_xnnpack": RunnerOptions(xnnpack=False), "reference": RunnerOptions(kernels="reference")}.items():
        with LiteRTRunner(digits_artifacts["int8"], options) as runner:
            outputs[label] = runner.infer({runner.inputs[0].name: x})[runner.outputs[0].name]
            assert runner.describe()["kernels"] == {"default": "xnnpack", "no_xnnpack": "builtin", "reference": "reference"}[label]
    # Kernels may differ by a quantization step or so, never more.
    step = 1.0
    with LiteRTRunner(digits_artifacts["int8"]) as runner:
        step = runner.outputs[0].scale
    for label in ("no_xnnpack", "reference"):
        assert np.max(np.abs(outputs[label] - outputs["default"])) <= 2 * step
    with pytest.raises(UsageError, match="--kernels"):
        LiteRTRunner(digits_artifacts["int8"], RunnerOptions(kernels="fast")).activate()


def test_state_reset_makes_lstm_outputs_independent_of_order():
    model = shared("tflite_micro/mnist_lstm/trained_lstm_int8.tflite")
    with np.load(shared("mnist/mnist_test.npz")) as data:
        images = data["x_test"][:2].astype(np.float32) / 255
    results = {}
    for reset in (False, True):
        with runner_for(model, RunnerOptions(reset_state=reset)) as runner:
            name = runner.inputs[0].name
            first = runner.infer({name: images[0:1]})
            runner.infer({name: images[1:2]})
            again = runner.infer({name: images[0:1]})
            key = runner.outputs[0].name
            results[reset] = np.array_equal(first[key], again[key])
    assert results[True], "with a state reset the same image must give the same output"


def test_truncated_tflite_is_a_clear_error(tmp_path, digits_artifacts):
    data = digits_artifacts["fp32"].read_bytes()
    (tmp_path / "cut.tflite").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelFileError, match="cut.tflite"):
        LiteRTRunner(tmp_path / "cut.tflite").activate()


@pytest.fixture(scope="module")
def dynamic_hw_tflite(tmp_path_factory) -> tuple:
    """A small TFLite model with dynamic batch, H and W (NHWC, 3 channels): a 3x3 conv, then the mean over H and W."""
    import tensorflow as tf

    kernel = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 3, 4)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="image")])
    def model(image):
        return tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(image, kernel, 1, "SAME")), axis=[1, 2])

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    path = tmp_path_factory.mktemp("dynamic") / "dynamic_hw.tflite"
    path.write_bytes(converter.convert())
    return path, model


def test_dynamic_dims_resolve_from_the_data_shape(dynamic_hw_tflite):
    path, model = dynamic_hw_tflite
    rng = np.random.default_rng(2)
    with LiteRTRunner(path) as runner:
        spec = runner.inputs[0]
        assert spec.dims == (None, None, None, 3)
        for shape in ((1, 12, 20, 3), (2, 7, 9, 3), (1, 12, 20, 3)):
            x = rng.random(shape).astype(np.float32)
            got = runner.infer({spec.name: x})[runner.outputs[0].name]
            np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-5, atol=1e-5)
        with pytest.raises(DataError, match="has shape"):
            runner.infer({spec.name: np.zeros((1, 12, 20, 4), np.float32)})


def test_input_shapes_fix_dynamic_dims_and_refuse_dims_that_do_not_fit(dynamic_hw_tflite):
    from ai_edge_litert.interpreter import Interpreter

    path, model = dynamic_hw_tflite
    x = np.random.default_rng(3).random((1, 16, 24, 3)).astype(np.float32)
    with LiteRTRunner(path, RunnerOptions(input_shapes={"": [1, 16, 24, 3]})) as runner:
        spec = runner.inputs[0]
        assert spec.shape == spec.dims == (1, 16, 24, 3)
        assert runner.outputs[0].shape == (1, 4)
        np.testing.assert_allclose(runner.infer({spec.name: x})[runner.outputs[0].name], model(x).numpy(), rtol=1e-5, atol=1e-5)
        with pytest.raises(DataError, match="has shape"):
            runner.infer({spec.name: np.zeros((1, 16, 20, 3), np.float32)})
    # The same refusal as ONNX Runtime's runner: a fixed dim (channels) that differs, a wrong rank, an unknown name.
    for shapes, message in (({"": [1, 16, 24, 4]}, "does not fit"), ({"": [1, 16, 3]}, "does not fit"), ({"pixels": [1, 16, 24, 3]}, "--input-shape names")):
        with pytest.raises(DataError, match=message):
            LiteRTRunner(path, RunnerOptions(input_shapes=shapes)).activate()
    # bare LiteRT agrees on the model's dynamic dims
    detail = Interpreter(model_path=str(path)).get_input_details()[0]
    assert list(detail["shape_signature"]) == [-1, -1, -1, 3]


def test_outputs_of_a_multi_output_keras_model_keep_distinct_names_in_the_keras_order(tmp_path):
    """TFLite names them "StatefulPartitionedCall_1:0" / ":1" in an order of its own; cut at ':' they would collide."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(5)
    image = keras.Input(shape=(8, 8, 1))
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(image))
    model = keras.Model(image, [keras.layers.Dense(10, activation="softmax")(hidden), keras.layers.Dense(1, activation="sigmoid")(hidden)])
    path = tmp_path / "two.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    x = np.random.default_rng(6).random((3, 8, 8, 1)).astype(np.float32)
    with LiteRTRunner(path) as runner:
        names = [spec.name for spec in runner.outputs]
        assert len(set(names)) == 2 and [spec.shape for spec in runner.outputs] == [(1, 10), (1, 1)]
        got = runner.infer({runner.inputs[0].name: x})
    assert list(got) == names
    for value, expected in zip(got.values(), model(x)):
        np.testing.assert_allclose(value, np.asarray(expected), rtol=1e-5, atol=1e-6)
