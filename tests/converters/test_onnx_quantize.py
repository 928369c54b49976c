"""converters/onnx_quantize.py: what real exports need from ONNX Runtime quantization, on small graphs built here."""

from __future__ import annotations

import numpy as np
import pytest

from converters import onnx_quantize
from edge_sdk.errors import ConversionError


def _model(nodes, initializers=(), opset=13):
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])], list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _run(path_or_model, x):
    import onnxruntime as ort

    source = path_or_model if isinstance(path_or_model, str) else path_or_model.SerializeToString()
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_fp16_keeps_a_cast_that_would_break_in_float_and_the_result_loads(tmp_path):
    """The YOLO-export failure: Cast(to=FLOAT) feeding an op whose weights became fp16."""
    from onnx import helper, numpy_helper

    model = _model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Cast", ["r"], ["c"], to=1), helper.make_node("Add", ["c", "w"], ["y"])],
                   [numpy_helper.from_array(np.ones(4, np.float32), "w")])
    notes: list[str] = []
    onnx_quantize.to_fp16_checked(model, tmp_path / "m.onnx", [], [], notes)
    x = np.array([[-1, 0, 1, 2]], np.float32)
    np.testing.assert_allclose(_run(str(tmp_path / "m.onnx"), x), _run(model, x))
    assert any("kept cast_1 in float" in note for note in notes)


def test_fp16_honours_exclude_op_types(tmp_path):
    import onnx
    from onnx import helper, numpy_helper

    model = _model([helper.make_node("Mul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])], [numpy_helper.from_array(np.full(4, 2, np.float32), "w")])
    onnx_quantize.to_fp16_checked(model, tmp_path / "m.onnx", [], ["Mul"], [])
    converted = onnx.load(str(tmp_path / "m.onnx"))
    weights = {init.name: init.data_type for init in converted.graph.initializer}
    assert weights["w"] == onnx.TensorProto.FLOAT  # the excluded Mul kept its float weights
    assert any(node.op_type == "Cast" for node in converted.graph.node)


def test_constants_become_initializers_and_opset_is_lifted():
    from onnx import helper, numpy_helper

    model = _model([helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(np.ones((4, 4), np.float32))),
                    helper.make_node("MatMul", ["x", "w"], ["y"])], opset=11)
    assert onnx_quantize.constants_to_initializers(model) == 1
    assert [init.name for init in model.graph.initializer] == ["w"] and all(node.op_type != "Constant" for node in model.graph.node)
    notes: list[str] = []
    lifted = onnx_quantize.lift_opset(model, 13, notes)
    assert onnx_quantize.opset_of(lifted) == 13 and "opset 11 to 13" in notes[0]
    x = np.random.default_rng(0).random((2, 4), np.float32)
    np.testing.assert_allclose(_run(lifted, x), x @ np.ones((4, 4), np.float32), rtol=1e-6)


def test_calibration_strides_divide_the_sample_count():
    assert onnx_quantize.stride_for(300) == 6 and onnx_quantize.stride_for(16) == 8 and onnx_quantize.stride_for(7) == 7
    assert onnx_quantize.stride_for(13) == 1 and onnx_quantize.stride_for(1) == 1


def test_ort_failures_become_exit_6_and_oom_names_the_fix():
    def broken():
        raise ValueError("Quantization parameters are not specified for the param y")

    with pytest.raises(ConversionError, match="quantize_static failed inside ONNX Runtime's quantization: ValueError") as raised:
        onnx_quantize.run_quantizer("quantize_static", broken, fix="try --no-per-channel")
    assert raised.value.exit_code == 6 and raised.value.fix == "try --no-per-channel"

    def out_of_memory():
        raise MemoryError()

    with pytest.raises(ConversionError, match="ran out of memory") as raised:
        onnx_quantize.run_quantizer("calibration", out_of_memory, fix="")
    assert "MinMax" in raised.value.fix


def test_an_artifact_that_quantized_nothing_or_grew_is_flagged(tmp_path, capsys):
    (tmp_path / "float.onnx").write_bytes(b"0" * 10)
    (tmp_path / "q.onnx").write_bytes(b"0" * 20)
    notes: list[str] = []
    onnx_quantize.check_result(tmp_path / "float.onnx", tmp_path / "q.onnx", 0.0, "dynamic", notes)
    assert len(notes) == 2 and "0 % of its compute ops quantized" in notes[0] and "larger than the float model" in notes[1]
    assert capsys.readouterr().err.count("warning:") == 2


def test_exclude_nodes_takes_node_or_tensor_names_and_refuses_unknown_ones():
    from onnx import helper

    from edge_sdk.errors import UsageError

    model = _model([helper.make_node("Relu", ["x"], ["relu_out"], name="relu"), helper.make_node("Neg", ["relu_out"], ["y"], name="neg")])
    assert onnx_quantize.resolve_node_names([model], ["relu", "y"]) == ["relu", "neg"]
    with pytest.raises(UsageError, match="'rleu' is neither a node nor a tensor") as raised:
        onnx_quantize.resolve_node_names([model], ["rleu"])
    assert raised.value.exit_code == 2 and "relu" in raised.value.fix
