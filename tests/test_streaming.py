"""edge_sdk.streaming: state pairs and streaming evaluation on a small stateful ONNX model built here."""

from __future__ import annotations

import numpy as np
import pytest

from edge_sdk.data import Dataset, PreprocessSpec
from edge_sdk.errors import UsageError
from edge_sdk.streaming import detect_state_pairs, evaluate_streaming, parse_state_pairs, sequence_subset


def test_parse_and_detect_state_pairs() -> None:
    assert parse_state_pairs("h:hn,c:cn") == [("h", "hn"), ("c", "cn")]
    with pytest.raises(UsageError):
        parse_state_pairs("h")
    inputs = [("input", (None, 576)), ("h", (1, 1, 128)), ("c", (1, 1, 128))]
    outputs = [("speech_probs", (None,)), ("hn", (1, 1, 128)), ("cn", (1, 1, 128))]
    assert detect_state_pairs(inputs, outputs) == [("h", "hn"), ("c", "cn")]
    assert detect_state_pairs([("state", (2, None, 128))], [("stateN", (None, None, None))]) == [("state", "stateN")]
    assert detect_state_pairs([("h", (1, 4))], [("hn", (1, 8))]) == []  # shapes do not fit: not a pair


def test_sequence_subset_takes_whole_sequences() -> None:
    ids = np.array([0, 0, 1, 1, 1, 2])
    chosen = sequence_subset(ids, 1, seed=0)
    assert chosen is not None and len(set(ids[chosen].tolist())) == 1
    assert len(chosen) == np.sum(ids == ids[chosen[0]])
    assert sequence_subset(ids, None) is None


def _accumulator(path) -> None:
    """y = x + h; hn = y: the output is the running sum of the sequence so far (starting from the given h)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "h"], ["y"]), helper.make_node("Identity", ["y"], ["hn"])], "acc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2]), helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2]), helper.make_tensor_value_info("hn", TensorProto.FLOAT, [1, 2])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def test_streaming_carries_each_models_own_state_through_each_sequence(tmp_path) -> None:
    from targets.runners.onnxruntime import OnnxRuntimeRunner

    _accumulator(tmp_path / "acc.onnx")
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    sequence = np.array([0, 0, 0, 1, 1])
    h = np.full((5, 2), 100, np.float32)  # the recorded state: only each sequence's first one is used
    np.savez(tmp_path / "data.npz", x=x, h=h, sequence=sequence)
    dataset = Dataset(tmp_path / "data.npz", PreprocessSpec())
    assert dataset.input_names == ["x", "h"] and dataset.describe()["sequences"] == 2
    with OnnxRuntimeRunner(tmp_path / "acc.onnx") as runner:
        outputs = evaluate_streaming(runner, dataset, None, [("h", "hn")])
    expected = np.concatenate([100 + np.cumsum(x[:3], axis=0), 100 + np.cumsum(x[3:], axis=0)])
    np.testing.assert_allclose(outputs["y"], expected)
