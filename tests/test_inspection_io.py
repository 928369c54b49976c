"""inspect and bench on what real models hold: ops inside If / Loop bodies, external data sizes, dynamic-range TFLite."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.bench import BenchSettings
from edge_sdk.inspection import inspect_artifact


def _model_with_if(path):
    import onnx
    from onnx import TensorProto, helper

    def branch(name, op):
        return helper.make_graph([helper.make_node(op, ["x", "x"], [f"{name}_y"]), helper.make_node("Relu", [f"{name}_y"], [f"{name}_out"])], name, [],
                                 [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [None, 4])])

    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0), helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=branch("then", "Add"), else_branch=branch("else", "Mul"))]
    graph = helper.make_graph(nodes, "if", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
                              [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_inspect_counts_ops_inside_if_branches(tmp_path):
    info = inspect_artifact(_model_with_if(tmp_path / "if.onnx"))["onnx"]
    assert info["ops"]["If"] == 1
    assert info["subgraph_ops"] == {"Add": 1, "Mul": 1, "Relu": 2} and info["subgraph_op_count"] == 4


def test_external_data_counts_in_inspect_and_bench_sizes(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).random((64, 256), np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 256])], [numpy_helper.from_array(weights, "w")])
    path = tmp_path / "mm.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path), save_as_external_data=True, location="mm.onnx.data", size_threshold=0)
    total = path.stat().st_size + (tmp_path / "mm.onnx.data").stat().st_size
    assert (tmp_path / "mm.onnx.data").stat().st_size >= weights.nbytes
    assert inspect_artifact(path)["size_bytes"] == total
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(1).random((4, 64), np.float32))
    result = edge_sdk.benchmark([path], tmp_path / "d.npz", settings=BenchSettings(runs=2, warmup=0, isolate=False))[0]
    assert result.artifact["size_bytes"] == total


@pytest.mark.slow
def test_inspect_recognises_a_dynamic_range_tflite(tmp_path):
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.Input((32,)), tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10)])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data: int8 weights, float activations
    (tmp_path / "dr.tflite").write_bytes(converter.convert())
    info = inspect_artifact(tmp_path / "dr.tflite")["tflite"]
    assert info["precision"] == "dynamic-range" and info["dynamic_range_op_count"] >= 1 and info["integer_op_share"] == 0.0
