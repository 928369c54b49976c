"""One naming scheme for `--exclude-nodes` (issue 13 Build 7): node names, tensor names mapped to their node, unknown
names refused (exit 2) for ONNX and TFLite; fp16 honours the flag (ONNX) or refuses it (TFLite)."""

import json

import numpy as np
import pytest

from edge_sdk.cli import main
from tests.conftest import DIGITS_PREPROCESS, shared

DIGITS_FLAGS = ["--scale", str(DIGITS_PREPROCESS["scale"]), "--layout", DIGITS_PREPROCESS["layout"]]


def _manifest(path):
    return json.loads(path.with_name(path.name + ".manifest.json").read_text())


def test_onnx_exclude_nodes_maps_a_tensor_name_and_refuses_an_unknown_one(tmp_path, capsys):
    model = shared("onnx_zoo_mnist/model.onnx")
    common = ["convert", str(model), "--to", "onnx", "--quant", "fp16", "--quiet"]
    assert main([*common, "--exclude-nodes", "Convolution28_Output_0", "-o", str(tmp_path / "fp16.onnx")]) == 0
    assert _manifest(tmp_path / "fp16.onnx")["options"]["exclude_nodes"] == ["Convolution28"]  # the node that produces it
    import onnx

    graph = onnx.load(str(tmp_path / "fp16.onnx")).graph
    producers = {output: node for node in graph.node for output in node.output}
    casts_to = {name: node.attribute[0].i for name, node in producers.items() if node.op_type == "Cast"}
    convolutions = {node.name: node for node in graph.node if node.op_type == "Conv"}
    # fp16 honoured it: that convolution runs in float (its weights cast back to float32), the other one in fp16.
    assert casts_to.get(convolutions["Convolution28"].input[1]) == onnx.TensorProto.FLOAT
    assert casts_to.get(convolutions["Convolution110"].input[1]) is None
    assert main([*common, "--exclude-nodes", "Convolutoin28", "-o", str(tmp_path / "bad.onnx")]) == 2
    err = capsys.readouterr().err
    assert "'Convolutoin28' is neither a node nor a tensor" in err and "Convolution28" in err
    assert not (tmp_path / "bad.onnx").exists()


def test_tflite_exclude_nodes_takes_op_names_and_refuses_layer_names(tmp_path, capsys, digits_keras, digits_npz):
    """An op name (as `edge-sdk debug` lists them: the calibrated model's ops, named by their output tensors) keeps
    that op in float; a Keras layer name is refused, because TF renames the scopes it traces a model in and a layer
    name would select another layer's ops."""
    import keras

    from converters.tflite import calibrate_only, op_names
    from edge_sdk.debug.tflite import quantization_converter

    common = ["convert", str(digits_keras), "--quant", "int8", "--calib", str(digits_npz[0]), "--calib-samples", "50", *DIGITS_FLAGS, "--quiet"]
    assert main([*common, "-o", str(tmp_path / "all.tflite")]) == 0
    _, converter, _, _ = quantization_converter(tmp_path / "all.tflite", digits_keras, None, None)
    dense_ops = [name for name in op_names(calibrate_only(converter)) if "MatMul" in name]
    assert dense_ops, "the digits CNN has a dense layer"
    assert main([*common, "--exclude-nodes", dense_ops[0], "-o", str(tmp_path / "kept.tflite")]) == 0
    assert _manifest(tmp_path / "kept.tflite")["options"]["float_nodes"] == [dense_ops[0]]
    from ai_edge_litert.interpreter import Interpreter

    dtypes = {detail["name"]: detail["dtype"] for detail in Interpreter(model_path=str(tmp_path / "kept.tflite")).get_tensor_details()}
    assert dtypes.get(dense_ops[0]) == np.float32  # that op's output stays float; the model's other activations are int8
    capsys.readouterr()
    layer = keras.models.load_model(digits_keras).layers[-1].name
    assert main([*common, "--exclude-nodes", layer, "-o", str(tmp_path / "bad.tflite")]) == 2
    err = capsys.readouterr().err
    assert f"--exclude-nodes '{layer}' is not an op of the model" in err and "Keras layer names do not map to ops" in err
    assert "`edge-sdk debug` lists every op name" in err and "Traceback" not in err
    assert not (tmp_path / "bad.tflite").exists()


@pytest.mark.parametrize("mode", ["fp16", "dynamic"])
def test_tflite_float_modes_refuse_exclude_nodes(tmp_path, capsys, digits_keras, mode):
    code = main(["convert", str(digits_keras), "--quant", mode, "--exclude-nodes", "dense", "-o", str(tmp_path / "m.tflite"), "--quiet"])
    assert code == 2 and f"TFLite --quant {mode} cannot keep nodes or op types in float" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_tflite_exclude_op_types_are_checked_against_the_model(tmp_path, capsys, digits_keras, digits_npz):
    common = ["convert", str(digits_keras), "--quant", "int8", "--calib", str(digits_npz[0]), "--calib-samples", "50", *DIGITS_FLAGS, "--quiet"]
    # TF's quantizer silently ignores an op type it does not know ('tfl.conv_2d' kept nothing in float): refused here.
    assert main([*common, "--exclude-op-types", "tfl.conv_2d", "-o", str(tmp_path / "bad.tflite")]) == 2
    assert "'tfl.conv_2d' is not an op type of the model" in capsys.readouterr().err
    assert main([*common, "--exclude-op-types", "fully_connected", "-o", str(tmp_path / "fc.tflite")]) == 0
    manifest = _manifest(tmp_path / "fc.tflite")
    assert manifest["options"]["float_ops"] == ["FULLY_CONNECTED"] and manifest["integer_op_share"] < 1.0
