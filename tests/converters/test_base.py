"""converters/base.py, the converter template: staging folder (third-party steps run there, removed on failure,
leftovers of killed runs cleaned), output suffix check, validation over every output."""

import os
import subprocess
import sys

import numpy as np
import pytest

from edge_sdk.api import convert
from edge_sdk.cli import main
from edge_sdk.errors import ConversionError, DataError
from edge_sdk.staging import staging_prefix

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _save_model(path, nodes, outputs, domains=()):
    weights = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32), "W")
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in outputs], [weights])
    opsets = [helper.make_opsetid("", 13), *(helper.make_opsetid(domain, 1) for domain in domains)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return path


@pytest.fixture
def two_output_onnx(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"]), helper.make_node("Relu", ["x"], ["z"])]
    return _save_model(tmp_path / "two.onnx", nodes, [("y", [1, 3]), ("z", [1, 4])])


@pytest.fixture
def calibration(tmp_path):
    path = tmp_path / "calib.npz"
    np.savez(path, x=np.random.default_rng(1).standard_normal((16, 4)).astype(np.float32))
    return path


@pytest.fixture
def work(tmp_path, monkeypatch):
    """The user's working directory: nothing may appear in it."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_validation_compares_every_output(two_output_onnx, calibration, tmp_path, work):
    artifact = convert(two_output_onnx, tmp_path / "out" / "two.onnx", to="onnx", mode="int8", calibration=calibration)
    validation = artifact.manifest.validation
    assert validation["status"] == "passed" and [o["name"] for o in validation["outputs"]] == ["y", "z"]
    assert validation["cosine_mean"] == min(o["cosine_mean"] for o in validation["outputs"]) >= 0.9
    assert validation["min_sqnr_db"] is not None  # the table's floor, recorded for a later gate
    # Each output also by its kind (edge_sdk.fidelity): the kind's own figures, not gated; weak ones would be named.
    for figures in validation["outputs"]:
        assert figures["kind"] == figures["by_kind"]["kind"] and figures["kind"] in ("class_scores", "values", "dense_map", "sequence", "state")
    assert all(line.split(":")[0] in ("y", "z") for line in validation.get("weak_outputs", []))
    # ORT's quant_pre_process ran in the staging folder: the working directory and the output folder hold only results.
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["two.onnx", "two.onnx.manifest.json"]


def test_failing_conversions_leave_the_working_directory_and_output_folder_as_they_were(tmp_path, calibration, work):
    # A custom op stops ORT's symbolic shape inference, which then writes sym_shape_infer_temp.onnx into the cwd.
    custom = _save_model(tmp_path / "custom.onnx", [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Foo", ["h"], ["y"], domain="custom.dom")],
                         [("y", [1, 3])], domains=("custom.dom",))
    wrong_shape = tmp_path / "wrong.npz"
    np.savez(wrong_shape, x=np.zeros((4, 7), np.float32))
    out = tmp_path / "out"
    out.mkdir()
    failures = [
        (ConversionError, lambda: convert(custom, out / "q.onnx", to="onnx", mode="int8", calibration=calibration)),
        (DataError, lambda: convert(custom, out / "q.onnx", to="onnx", mode="int8", calibration=wrong_shape)),
    ]
    for error, attempt in failures:
        with pytest.raises(error):
            attempt()
        assert os.getcwd() == str(work)
        assert list(work.iterdir()) == [] and list(out.iterdir()) == []


def test_staging_left_by_a_killed_run_is_removed_by_the_next_run_once_its_process_is_gone(two_output_onnx, tmp_path, capsys):
    output = tmp_path / "out" / "m.onnx"
    output.parent.mkdir()
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    dead = output.parent / f"{staging_prefix(output)}{finished.pid}-abc"
    live = output.parent / f"{staging_prefix(output)}{os.getppid()}-def"  # a process that is still running
    other = output.parent / f"{staging_prefix(tmp_path / 'other.onnx')}{finished.pid}-ghi"  # another output's
    for folder in (dead, live, other):
        folder.mkdir()
        (folder / "float.onnx").write_bytes(b"partial")
    convert(two_output_onnx, output, to="onnx")
    assert not dead.exists() and live.exists() and other.exists()
    assert str(dead) in capsys.readouterr().err


def test_output_suffix_must_be_the_formats(tmp_path, two_output_onnx, capsys):
    assert main(["convert", str(two_output_onnx), "--to", "tflite", "-o", str(tmp_path / "x.onnx")]) == 2
    error = capsys.readouterr().err
    assert "--to tflite writes .tflite files, not x.onnx" in error and "Traceback" not in error
    assert main(["convert", str(two_output_onnx), "--to", "onnx", "-o", str(tmp_path / "x.tflite")]) == 2
    assert "writes .onnx files" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.onnx"]
