import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import edge_sdk
from edge_sdk.errors import ModelFileError, UsageError
from edge_sdk.loaders.onnx_intake import default_opset, load_onnx
from edge_sdk.loaders.to_onnx import module_from_factory
from tests.conftest import shared

MNIST_NCHW = {"scale": 1 / 255, "layout": "NCHW"}


def test_zoo_mnist_opset1_is_lifted_and_matches_its_reference_outputs():
    import onnxruntime as ort

    loaded = load_onnx(shared("onnx_zoo_mnist/model.onnx"))
    assert default_opset(loaded.model) == 13 and "lifted from opset 1 to opset 13" in loaded.notes
    assert loaded.signature.inputs[0].shape == [1, 1, 28, 28] and loaded.parameter_count == 5998
    session = ort.InferenceSession(loaded.model.SerializeToString(), providers=["CPUExecutionProvider"])
    for index in range(3):
        with np.load(shared(f"onnx_zoo_mnist/test_data_{index}.npz")) as pair:
            output = session.run(None, {"Input3": pair["inputs"].reshape(1, 1, 28, 28).astype(np.float32)})[0]
            np.testing.assert_allclose(output, pair["outputs"], atol=1e-4)


def _tiny_model(op_type="Relu", opset=13, domain=""):
    node = helper.make_node(op_type, ["x"], ["y"], domain=domain)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=imports)


def test_invalid_protobuf_is_a_clear_error(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"\x00\xff this is not a protobuf" * 10)
    with pytest.raises(ModelFileError, match="bad.onnx is not a valid ONNX protobuf"):
        load_onnx(tmp_path / "bad.onnx")


def test_unknown_op_fails_the_checker(tmp_path):
    onnx.save(_tiny_model("NoSuchOp"), tmp_path / "unknown.onnx")
    with pytest.raises(ModelFileError, match="(?s)unknown.onnx fails the ONNX checker.*NoSuchOp"):
        load_onnx(tmp_path / "unknown.onnx")


def test_missing_external_data_is_named(tmp_path):
    model = _tiny_model("Add")
    model.graph.node[0].input.append("w")
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.ones((1, 4), np.float32) * 3, "w"))
    onnx.save_model(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, location="ext.onnx.data", size_threshold=0)
    loaded = load_onnx(tmp_path / "ext.onnx")
    assert any("external data" in note for note in loaded.notes)
    (tmp_path / "ext.onnx.data").unlink()
    with pytest.raises(ModelFileError, match=r"(?s)external data file\(s\) \['ext.onnx.data'\].*copy the .data"):
        load_onnx(tmp_path / "ext.onnx")


def test_opset_too_new_for_the_runtime_is_refused(tmp_path):
    from targets.runners.onnxruntime import OnnxRuntimeRunner

    onnx.save(_tiny_model(opset=onnx.defs.onnx_opset_version() + 5), tmp_path / "future.onnx")
    with pytest.raises(ModelFileError, match="(?i)future.onnx.*opset"):
        OnnxRuntimeRunner(tmp_path / "future.onnx").activate()


def test_factory_spec_that_does_not_import_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot import module 'no_such_package_xyz.models'"):
        module_from_factory("no_such_package_xyz.models:make")
    with pytest.raises(UsageError, match="cannot import module"):
        edge_sdk.convert("no_such_package_xyz.models:make", tmp_path / "m.onnx", to="onnx", input_shapes={"": [1, 1, 8, 8]})


@pytest.mark.parametrize("location", ["../outside.data", "/etc/hostname", "sub/../../outside.data"])
def test_external_data_outside_the_models_folder_is_refused_naming_it(tmp_path, location):
    model = _tiny_model("Add")
    model.graph.node[0].input.append("w")
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.ones((1, 4), np.float32), "w"))
    onnx.save_model(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, location="ext.onnx.data", size_threshold=0)
    proto = onnx.load(str(tmp_path / "ext.onnx"), load_external_data=False)
    for entry in proto.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    folder = tmp_path / "model"
    folder.mkdir()
    onnx.save_model(proto, str(folder / "ext.onnx"))
    (tmp_path / "outside.data").write_bytes((tmp_path / "ext.onnx.data").read_bytes())
    with pytest.raises(ModelFileError, match=rf"points its external data at '{location}', outside its own folder"):
        load_onnx(folder / "ext.onnx")
    completed = edge_sdk_cli("inspect", folder / "ext.onnx")
    assert completed.returncode == 3 and "Traceback" not in completed.stderr and "outside its own folder" in completed.stderr, completed.stderr


def edge_sdk_cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "edge_sdk", *map(str, args)], capture_output=True, text=True, timeout=120)
