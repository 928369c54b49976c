import numpy as np
import pytest

from edge_sdk.errors import ModelFileError, UsageError
from edge_sdk.models import ModelSignature, TensorInfo, detect_model_kind, load_model, parse_input_shapes, resolve_input_shapes


def test_detect_kinds_by_content(tmp_path, digits_keras, digits_artifacts):
    assert detect_model_kind(digits_keras) == "keras"
    assert detect_model_kind(digits_artifacts["int8"]) == "tflite"
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelFileError, match="notes.txt is not a model file"):
        detect_model_kind(tmp_path / "notes.txt")
    with pytest.raises(ModelFileError, match="does not exist"):
        detect_model_kind(tmp_path / "missing.keras")
    (tmp_path / "fake.tflite").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="no TFL3 identifier"):
        detect_model_kind(tmp_path / "fake.tflite")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ModelFileError, match="not a SavedModel"):
        detect_model_kind(tmp_path / "folder")


def test_truncated_keras_archive(tmp_path, digits_keras):
    data = digits_keras.read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="cut.keras is not a valid .keras archive"):
        load_model(tmp_path / "cut.keras")


def test_keras_signature(digits_keras):
    loaded = load_model(digits_keras)
    assert loaded.framework == "keras3"
    assert loaded.signature.inputs[0].shape == [None, 8, 8, 1]
    assert loaded.signature.outputs[0].shape == [None, 10]
    assert loaded.parameter_count > 10_000


def test_dynamic_dimensions_need_an_input_shape(tmp_path):
    signature = ModelSignature([TensorInfo("pixels", [None, None, None, 3], "float32")], [])
    with pytest.raises(UsageError, match=r"(?s)dynamic dimension\(s\) \[1, 2\].*--input-shape pixels:1,N,N,3"):
        resolve_input_shapes(signature, None, tmp_path / "m.keras")
    assert resolve_input_shapes(signature, parse_input_shapes(["1,32,32,3"]), tmp_path) == [("pixels", [1, 32, 32, 3])]
    assert resolve_input_shapes(signature, parse_input_shapes(["pixels:2,16,16,3"]), tmp_path) == [("pixels", [2, 16, 16, 3])]
    with pytest.raises(UsageError, match="unknown inputs"):
        resolve_input_shapes(signature, parse_input_shapes(["other:1,2,2,3"]), tmp_path)
    with pytest.raises(UsageError, match="does not fit"):
        resolve_input_shapes(signature, parse_input_shapes(["1,32,32,4"]), tmp_path)


@pytest.mark.slow
def test_tf_keras_h5_pruned_wrappers_are_stripped_and_qat_is_recognised(tmp_path, digits_npz):
    import tensorflow_model_optimization as tfmot
    import tf_keras

    with np.load(digits_npz[0]) as data:
        x, y = data["x"][..., None] / 16.0, data["y"]
    base = tf_keras.Sequential([tf_keras.Input((8, 8, 1)), tf_keras.layers.Conv2D(8, 3, activation="relu"), tf_keras.layers.Flatten(), tf_keras.layers.Dense(10)])
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(base, pruning_schedule=schedule)
    pruned.compile("adam", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(x, y, epochs=1, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    pruned.save(tmp_path / "pruned.h5")
    loaded = load_model(tmp_path / "pruned.h5")
    assert loaded.framework == "tf_keras" and "stripped tfmot pruning wrappers" in loaded.notes
    assert not any(type(layer).__name__ == "PruneLowMagnitude" for layer in loaded.model.layers)

    qat = tfmot.quantization.keras.quantize_model(base)
    qat.compile("adam", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x, y, epochs=1, verbose=0)
    qat.save(tmp_path / "qat.h5")
    assert load_model(tmp_path / "qat.h5").quantization_aware
