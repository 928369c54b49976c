"""debug and check-calib with a PyTorch model as the float reference (edge_sdk.debug.torch_reference,
edge_sdk.calibcheck): real torch, torch.onnx.export, ONNX Runtime's quantizer and debugger, litert-torch."""

from __future__ import annotations

import json

import pytest

from tests.conftest import edge_sdk_checked as edge_sdk

torch = pytest.importorskip("torch")
pytest.importorskip("litert_torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from tests.converters import torch_nets  # noqa: E402

FACTORY = "tests.converters.torch_nets:digits_cnn"
DIGITS = ["--scale", "1/16", "--layout", "NCHW", "--input-shape", "1,1,8,8"]




@pytest.fixture(scope="module")
def converted(tmp_path_factory, digits_npz):
    """The digits CNN trained for a second, its weights, its ONNX int8 and fp32 artifacts and a TFLite int8 one."""
    folder = tmp_path_factory.mktemp("debug_torch")
    train, test = digits_npz
    weights = folder / "cnn.safetensors"
    safetensors_torch.save_file(torch_nets.train_digits(torch_nets.digits_cnn(), train).state_dict(), weights)
    paths = {"weights": weights, "folder": folder}
    for name, target, mode in (("onnx_int8", "onnx", "int8"), ("onnx_fp32", "onnx", "fp32"), ("tflite_int8", "tflite", "int8")):
        paths[name] = folder / f"cnn_{mode}.{target}"
        calib = ["--calib", train] if mode == "int8" else []
        edge_sdk("convert", FACTORY, "--weights", weights, "--to", target, "--quant", mode, *calib, "--validate-data", test, *DIGITS, "--quiet", "-o", paths[name])
    return paths


@pytest.mark.slow
def test_onnx_layers_ranked_against_the_pytorch_model_equal_those_against_its_own_fp32_export(converted, digits_npz, tmp_path):
    common = ["--data", digits_npz[1], "--samples", "60", "--json"]
    against_pytorch = edge_sdk("debug", converted["onnx_int8"], "--reference", FACTORY, "--reference-weights", converted["weights"], *common, env={"TMPDIR": str(tmp_path)})
    against_file = edge_sdk("debug", converted["onnx_int8"], "--reference", converted["onnx_fp32"], *common)
    pytorch_layers = json.loads(against_pytorch.stdout)["debug"]["layers"]
    file_layers = json.loads(against_file.stdout)["debug"]["layers"]
    assert pytorch_layers and [layer["name"] for layer in pytorch_layers] == [layer["name"] for layer in file_layers]
    for mine, theirs in zip(pytorch_layers, file_layers):
        assert mine["sqnr_db"] == pytest.approx(theirs["sqnr_db"], rel=1e-6), mine["name"]
        assert mine["cumulative_sqnr_db"] == pytest.approx(theirs["cumulative_sqnr_db"], rel=1e-4, abs=1e-4), mine["name"]
    assert json.loads(against_pytorch.stdout)["debug"]["reference"] == FACTORY
    assert not list(tmp_path.glob("edge-sdk-*"))  # the temporary ONNX export is gone


@pytest.mark.slow
def test_what_debug_cannot_do_with_a_pytorch_reference_is_refused_before_any_work(converted, digits_npz, tmp_path):
    pytorch = ["--reference", FACTORY, "--reference-weights", converted["weights"], "--data", digits_npz[1]]
    tflite = edge_sdk("debug", converted["tflite_int8"], *pytorch, "-o", tmp_path / "report.json", check=False)
    assert tflite.returncode == 2 and "QuantizationDebugger" in tflite.stderr and "debug MODEL.onnx --reference" in tflite.stderr
    fallback = edge_sdk("debug", converted["onnx_int8"], *pytorch, "--max-drop", "1", "--fallback-dir", tmp_path / "fb", check=False)
    assert fallback.returncode == 2 and "--max-drop" in fallback.stderr
    for result in (tflite, fallback):
        assert "Traceback" not in result.stderr and result.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_check_calib_estimates_sufficiency_with_a_pytorch_reference(converted, digits_npz):
    train, test = digits_npz
    result = edge_sdk("check-calib", train, "--data", test, "--reference", FACTORY, "--reference-weights", converted["weights"], "--to", "onnx",
                      "--calib-samples", "20", "--subsets", "2", *DIGITS, "--json", check=False)
    assert result.returncode in (0, 4), result.stderr  # 4: findings about the data (duplicates, outliers), printed in the JSON
    sufficiency = json.loads(result.stdout)["sufficiency"]
    assert len(sufficiency["top1"]) == 2 and sufficiency["mean"] > 0.85 and 0 <= sufficiency["spread"] < 0.1
    missing = edge_sdk("check-calib", train, "--data", test, "--reference", "tests.converters.no_such_module:digits_cnn", *DIGITS, check=False)
    assert missing.returncode == 2 and "cannot import module" in missing.stderr and "Traceback" not in missing.stderr
