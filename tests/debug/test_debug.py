"""The quantization debugger and float fallback on real data: the digits CNN (TFLite) and the zoo MNIST CNN (ONNX)."""

import json

import numpy as np
import pytest

import edge_sdk.api as api
from edge_sdk.cli import main
from edge_sdk.debug import debug_artifact
from edge_sdk.debug.fallback import float_nodes_from, run_fallback
from tests.conftest import shared
from tests.test_gate import badly_calibrated  # noqa: F401 - shared fixture

MNIST_NCHW = {"scale": 1 / 255, "layout": "NCHW"}


def test_tflite_debugger_ranks_layers_and_finds_the_first_jump(digits_artifacts, badly_calibrated, digits_keras, digits_npz):
    good = debug_artifact(digits_artifacts["int8"], digits_keras, digits_npz[1], samples=100)
    bad = debug_artifact(badly_calibrated, digits_keras, digits_npz[1], samples=100)
    assert [layer.op for layer in good.layers][:2] == ["CONV_2D", "CONV_2D"] and len(good.ranked) == len(good.layers) >= 5
    assert min(layer.sqnr_db for layer in good.layers) > 30 and good.first_jump is None
    assert bad.first_jump is not None and bad.first_jump.index == 0 and bad.first_jump.sqnr_db < 10
    assert bad.ranked[0].sqnr_db < 10 and "| rank | node | tensor |" in bad.to_markdown()


def test_onnx_debugger_uses_the_same_report_format(tmp_path):
    mnist, model = shared("mnist/mnist_test.npz"), shared("onnx_zoo_mnist/model.onnx")
    with np.load(mnist) as data:
        np.savez(tmp_path / "calib.npz", x=data["x_test"][:300], y=data["y_test"][:300])
        np.savez(tmp_path / "calib_x255.npz", x=data["x_test"][:300].astype(np.float32) * 255, y=data["y_test"][:300])
        np.savez(tmp_path / "eval.npz", x=data["x_test"][5000:5500], y=data["y_test"][5000:5500])
    fp32 = api.convert(model, tmp_path / "zoo.onnx", to="onnx", preprocess=MNIST_NCHW)
    good = api.convert(model, tmp_path / "zoo_int8.onnx", to="onnx", mode="int8", calibration=tmp_path / "calib.npz", calibration_samples=200, preprocess=MNIST_NCHW)
    bad = api.convert(model, tmp_path / "zoo_bad.onnx", to="onnx", mode="int8", calibration=tmp_path / "calib_x255.npz", calibration_samples=200, preprocess=MNIST_NCHW)
    good_report = debug_artifact(good.path, fp32.path, tmp_path / "eval.npz", samples=100)
    bad_report = debug_artifact(bad.path, fp32.path, tmp_path / "eval.npz", samples=100)
    assert set(good_report.to_dict()) == set(bad_report.to_dict()) and good_report.format == "onnx"
    assert min(layer.sqnr_db for layer in good_report.layers) > 30
    assert bad_report.first_jump is not None and bad_report.first_jump.name == "Input3"
    assert all(layer.cumulative_sqnr_db is not None for layer in bad_report.layers)
    # One naming scheme: each layer by the node name --exclude-nodes takes, its tensor name beside it where it differs.
    assert all(layer.op == "input" or layer.float_key == [layer.name] for layer in good_report.layers)
    renamed = [layer for layer in good_report.layers if layer.tensor]
    assert renamed and all(layer.tensor != layer.name for layer in renamed) and f"| {renamed[0].name} | {renamed[0].tensor} |" in good_report.to_markdown(top=100)
    outcome = run_fallback(bad_report, tmp_path / "eval.npz", max_drop_points=2.0, output_dir=tmp_path / "fallback", max_samples=500, max_layers=2)
    assert outcome.baseline.drop_points > 20 and len(outcome.steps) >= 1
    # ONNX has no int16-activation mode: when int8 is not viable, the result says so instead of an int16x8 try.
    assert outcome.within_budget or ("int8 is not viable here" in outcome.summary() and "no int16-activation mode" in outcome.summary())
    assert sorted(path.name for path in (tmp_path / "fallback").iterdir()) == ([] if not outcome.within_budget else
                                                                               sorted([outcome.chosen.artifact.split("/")[-1], outcome.chosen.artifact.split("/")[-1] + ".manifest.json"]))


def test_fallback_meets_the_budget_and_convert_reproduces_it(tmp_path, badly_calibrated, digits_keras, digits_npz):
    report = debug_artifact(badly_calibrated, digits_keras, digits_npz[1], samples=100)
    # Miscalibrated everywhere, this model needs every layer in float, past the default share (int8 "not viable",
    # tests/debug/test_fallback.py); the whole share is allowed here to test the search and its reproduction.
    outcome = run_fallback(report, digits_npz[1], max_drop_points=2.0, output_dir=tmp_path, max_samples=450, runs=10, max_float_share=1.0)
    assert outcome.within_budget and outcome.chosen.drop_upper_points <= 2.0 and outcome.baseline.drop_points > 20
    assert "cost:" in outcome.summary() and outcome.chosen.size_bytes != outcome.baseline.size_bytes
    outcome.save(tmp_path / "fallback.json")
    nodes = float_nodes_from(tmp_path / "fallback.json")
    manifest = json.loads((tmp_path / (outcome.chosen.artifact.split("/")[-1] + ".manifest.json")).read_text())
    assert manifest["options"]["float_nodes"] == nodes
    calibration = manifest["calibration"]["path"]
    code = main(["convert", str(digits_keras), "--quant", "int8", "--calib", calibration, "--scale", "1/16", "--layout", "NHWC",
                 "--float-nodes-from", str(tmp_path / "fallback.json"), "-o", str(tmp_path / "reproduced.tflite"), "--quiet"])
    assert code == 0
    reproduced = json.loads((tmp_path / "reproduced.tflite.manifest.json").read_text())
    assert reproduced["options"]["float_nodes"] == nodes and reproduced["sha256"] == manifest["sha256"]


def test_debug_runs_on_an_artifact_that_failed_validation(tmp_path, capsys, digits_artifacts, digits_keras, digits_npz):
    """What `convert --keep-failed` leaves: the artifact with its manifest marked failed. debug runs on it, with one note."""
    import shutil

    artifact = tmp_path / "kept_int8.tflite"
    shutil.copyfile(digits_artifacts["int8"], artifact)
    manifest = json.loads((digits_artifacts["int8"].parent / (digits_artifacts["int8"].name + ".manifest.json")).read_text())
    manifest["validation"] = {**(manifest["validation"] or {}), "status": "failed", "cosine_mean": 0.42}
    (tmp_path / "kept_int8.tflite.manifest.json").write_text(json.dumps(manifest))
    code = main(["debug", str(artifact), "--reference", str(digits_keras), "--data", str(digits_npz[1]), "--samples", "20", "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)["debug"]
    assert code == 0 and report["layers"] and "failed conversion validation" in report["notes"][0]
    notes = [line for line in captured.err.splitlines() if "failed conversion validation" in line]
    assert len(notes) == 1 and "kept_int8.tflite" in notes[0] and "cosine_mean 0.42" in notes[0]
