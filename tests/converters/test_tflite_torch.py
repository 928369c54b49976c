"""PyTorch and ONNX -> TFLite (converters/tflite_torch.py): real litert-torch, ai-edge-quantizer, LiteRT and ONNX Runtime."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, shared, edge_sdk_checked as edge_sdk

torch = pytest.importorskip("torch")
pytest.importorskip("litert_torch")
pytest.importorskip("safetensors")

from tests.converters import torch_nets  # noqa: E402

FACTORY = "tests.converters.torch_nets:digits_cnn"
DIGITS = ["--scale", "1/16", "--layout", "NCHW", "--input-shape", "1,1,8,8"]


def bench_top1(artifacts: list[Path], data: Path, *extra: str) -> list[dict]:
    result = edge_sdk("bench", *artifacts, "--data", data, "--runs", "3", "--warmup", "1", "--json", *extra)
    return json.loads(result.stdout)["results"]


def manifest_of(artifact: Path) -> dict:
    return json.loads(artifact.with_name(artifact.name + ".manifest.json").read_text())


@pytest.fixture(scope="module")
def trained(digits_npz):
    """The digits CNN trained for a second, and its float accuracy on the held-out digits."""
    model = torch_nets.train_digits(torch_nets.digits_cnn(), digits_npz[0])
    return model, torch_nets.accuracy(model, digits_npz[1])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _to_int8_twins(weights: Path, out: Path, digits_npz, *trust: str) -> tuple[Path, Path]:
    train, test = digits_npz
    tflite, onnx = out / "cnn_int8.tflite", out / "cnn_int8.onnx"
    for target, artifact in (("tflite", tflite), ("onnx", onnx)):
        edge_sdk("convert", FACTORY, "--weights", weights, *trust, "--to", target, "--quant", "int8", "--calib", train, "--validate-data", test, *DIGITS, "-o", artifact)
        manifest = manifest_of(artifact)
        assert manifest["validation"]["status"] == "passed"
    return tflite, onnx


def _check_within_float(tflite: Path, onnx: Path, float_model, test: Path) -> None:
    float_top1 = torch_nets.accuracy(float_model, test)
    for result in bench_top1([tflite, onnx], test):
        assert result["status"] == "ok"
        top1 = result["accuracy"]["top1"]
        assert abs(top1 - float_top1) <= 0.015, (result["artifact"]["name"], top1, float_top1)
    manifest = manifest_of(tflite)
    assert manifest["integer_op_share"] == 1.0 and {t["dtype"] for t in manifest["inputs"] + manifest["outputs"]} == {"int8"}
    assert manifest["source"]["weights"]["tensors"] == len(float_model.state_dict())


@pytest.mark.slow
def test_accelerate_checkpoint_to_tflite_int8_and_onnx_int8_within_1_5_points(tmp_path, digits_npz, trained):
    accelerate = pytest.importorskip("accelerate")
    model, _ = trained
    accelerate.Accelerator(cpu=True).save_model(model, tmp_path / "saved", max_shard_size="20KB")  # sharded, with its index
    assert list((tmp_path / "saved").glob("*.index.json"))
    tflite, onnx = _to_int8_twins(tmp_path / "saved", tmp_path, digits_npz)
    _check_within_float(tflite, onnx, model, digits_npz[1])
    assert manifest_of(tflite)["source"]["weights"]["kind"] == "accelerate"


@pytest.mark.slow
def test_deepspeed_zero2_checkpoint_to_tflite_int8_and_onnx_int8(tmp_path, digits_npz):
    pytest.importorskip("deepspeed")
    from edge_sdk.loaders.torch_weights import apply_weights

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    trained = subprocess.run([sys.executable, "-m", "tests.converters.deepspeed_train", tmp_path / "ds", digits_npz[0], "--stage", "2", "--port", str(_free_port())],
                             capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    refused = edge_sdk("convert", FACTORY, "--weights", tmp_path / "ds", "--to", "tflite", *DIGITS, "-o", tmp_path / "no.tflite", check=False)
    assert refused.returncode == 2 and "--trust-model" in refused.stderr and "Traceback" not in refused.stderr
    assert not list(tmp_path.glob("no.tflite*"))
    float_model = torch_nets.digits_cnn()
    described = apply_weights(float_model, tmp_path / "ds", trust_model=True)
    assert described["zero_stage"] == "1 or 2" and described["consolidated_by"] == "deepspeed.utils.zero_to_fp32"
    as_json = edge_sdk("convert", FACTORY, "--weights", tmp_path / "ds", "--trust-model", "--to", "onnx", *DIGITS, "-o", tmp_path / "fp32.onnx", "--json")
    assert json.loads(as_json.stdout)["manifest"]["mode"] == "fp32"  # DeepSpeed's logging stays off our stdout
    tflite, onnx = _to_int8_twins(tmp_path / "ds", tmp_path, digits_npz, "--trust-model")
    _check_within_float(tflite, onnx, float_model.eval(), digits_npz[1])


@pytest.mark.slow
def test_bad_checkpoint_inputs_give_one_message_and_write_nothing(tmp_path, digits_npz, trained):
    import safetensors.torch

    model, _ = trained
    state = model.state_dict()
    safetensors.torch.save_file({k: v for k, v in state.items() if not k.startswith("6.")}, tmp_path / "missing.safetensors")
    safetensors.torch.save_file(torch_nets.digits_cnn_wider().state_dict(), tmp_path / "wider.safetensors")
    torch.save({"weights": state, "note": object.__new__(torch_nets.NotAWeight)}, tmp_path / "pickle.pt")
    (tmp_path / "ds" / "global_step1").mkdir(parents=True)
    (tmp_path / "ds" / "global_step1" / "mp_rank_00_model_states.pt").write_bytes(b"x")
    safetensors.torch.save_file(state, tmp_path / "good.safetensors")
    cases = [
        (("tests.converters.no_such_module:digits_cnn", "--weights", tmp_path / "good.safetensors"), 2, "cannot import module"),
        ((FACTORY, "--weights", tmp_path / "missing.safetensors"), 3, "2 missing keys: 6.weight, 6.bias"),
        ((FACTORY, "--weights", tmp_path / "wider.safetensors"), 3, "shape mismatches: 0.weight: checkpoint [8, 1, 3, 3] vs model [16, 1, 3, 3]"),
        ((FACTORY, "--weights", tmp_path / "pickle.pt"), 3, "torch.load(weights_only=True) refuses it"),
        ((FACTORY, "--weights", tmp_path / "ds", "--trust-model"), 3, "no 'latest' file"),
    ]
    out = tmp_path / "out"
    out.mkdir()
    for args, code, message in cases:
        for target in ("tflite", "onnx"):
            result = edge_sdk("convert", *args, "--to", target, *DIGITS, "-o", out / f"m.{target}", check=False)
            assert result.returncode == code and message in result.stderr, (args, target, result.returncode, result.stderr[-2000:])
            assert "Traceback" not in result.stderr and result.stdout == ""
    assert list(out.iterdir()) == []


@pytest.mark.slow
def test_mobilenet_v2_style_fp32_matches_pytorch_int8_benched_beside_its_onnx_twin(tmp_path):
    images = torch_nets.sample_images(64, 16)  # real photos, NHWC in [0, 1]
    np.savez(tmp_path / "calib.npz", x=images[:8])
    np.savez(tmp_path / "eval.npz", x=images[8:])
    model = torch_nets.mobilenet_v2_style()
    with torch.no_grad():
        reference = model(torch.from_numpy(images[8:].transpose(0, 3, 1, 2).copy())).numpy()
    np.savez(tmp_path / "eval_labelled.npz", x=images[8:], y=reference.argmax(1))
    common = ["--source-layout", "NHWC", "--layout", "NCHW", "--input-shape", "1,3,64,64", "--validate-data", tmp_path / "eval.npz"]
    factory = "tests.converters.torch_nets:mobilenet_v2_style"
    edge_sdk("convert", factory, "--to", "tflite", *common, "-o", tmp_path / "m_fp32.tflite")
    edge_sdk("convert", factory, "--to", "tflite", "--quant", "int8", "--calib", tmp_path / "calib.npz", *common, "-o", tmp_path / "m_int8.tflite")
    edge_sdk("convert", factory, "--to", "onnx", "--quant", "int8", "--calib", tmp_path / "calib.npz", *common, "-o", tmp_path / "m_int8.onnx")
    fp32 = manifest_of(tmp_path / "m_fp32.tflite")["validation"]
    assert fp32["status"] == "passed" and fp32["max_abs_error"] <= 1e-4, fp32
    int8 = manifest_of(tmp_path / "m_int8.tflite")
    assert int8["validation"]["sqnr_db"] >= 15, int8["validation"]
    assert int8["integer_op_share"] == 1.0
    results = bench_top1([tmp_path / "m_int8.tflite", tmp_path / "m_int8.onnx"], tmp_path / "eval_labelled.npz", "--reference", tmp_path / "m_fp32.tflite")
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert {r["artifact"]["format"] for r in results} == {"tflite", "onnx"}
    for result in results:
        assert result["reference"]["fidelity"]["sqnr_db"] >= 15, result["reference"]


@pytest.mark.slow
def test_zoo_mnist_opset1_onnx_to_tflite_int8_reaches_98_5_percent(tmp_path):
    mnist = np.load(shared("mnist/mnist_test.npz"))
    x, y = mnist["x_test"], mnist["y_test"].astype(np.int64)
    np.savez(tmp_path / "calib.npz", x=x[9000:], y=y[9000:])
    np.savez(tmp_path / "eval.npz", x=x[:9000], y=y[:9000])
    artifact = tmp_path / "zoo_int8.tflite"
    edge_sdk("convert", shared("onnx_zoo_mnist/model.onnx"), "--to", "tflite", "--quant", "int8", "--calib", tmp_path / "calib.npz", "--calib-samples", "1000",
             "--scale", "1/255", "--layout", "NCHW", "-o", artifact)
    (result,) = bench_top1([artifact], tmp_path / "eval.npz")
    assert result["accuracy"]["samples"] == 9000 and result["accuracy"]["top1"] >= 0.985, result["accuracy"]
    inspected = json.loads(edge_sdk("inspect", artifact, "--json").stdout)["tflite"]
    assert inspected["integer_op_share"] == 1.0
    assert [t["dtype"] for t in inspected["io"]["inputs"] + inspected["io"]["outputs"]] == ["int8", "int8"]
    assert manifest_of(artifact)["source"]["via"] == "onnx2torch"


@pytest.mark.slow
def test_pt2_with_nhwc_input_and_float_modes_torchscript_refused(tmp_path, digits_npz, trained):
    from edge_sdk.api import convert
    from edge_sdk.errors import ModelFileError

    model, _ = trained
    example = torch.zeros(1, 1, 8, 8)
    torch.export.save(torch.export.export(model, (example,)), tmp_path / "cnn.pt2")
    torch.jit.save(torch.jit.trace(model, example), tmp_path / "cnn.ts")
    train, test = digits_npz
    nhwc = convert(tmp_path / "cnn.pt2", tmp_path / "nhwc.tflite", nhwc_input=True, validation_data=test, preprocess={"scale": 1 / 16, "layout": "NHWC"})
    manifest = nhwc.manifest.to_dict()
    assert manifest["inputs"][0]["shape"] == [1, 8, 8, 1] and manifest["details"]["nhwc_input"] is True and manifest["details"]["layout"] == "NHWC"
    assert manifest["details"]["torch_input_shapes"] == {"input": [1, 1, 8, 8]} and manifest["validation"]["max_abs_error"] <= 1e-4
    for mode in ("fp16", "dynamic", "int16x8"):
        artifact = convert(model, tmp_path / f"{mode}.tflite", mode=mode, calibration=train if mode == "int16x8" else None, validation_data=test,
                           preprocess={"scale": 1 / 16, "layout": "NCHW"}, input_shapes={"": [1, 1, 8, 8]})
        assert artifact.manifest.validation["status"] == "passed", (mode, artifact.manifest.validation)
    with pytest.raises(ModelFileError, match=r"(?s)TorchScript.*torch.export.save"):
        convert(tmp_path / "cnn.ts", tmp_path / "ts.tflite", input_shapes={"": [1, 1, 8, 8]})
    assert not (tmp_path / "ts.tflite").exists()


@pytest.mark.slow
def test_deepspeed_zero3_bf16_checkpoint_of_two_gloo_processes_is_consolidated(tmp_path, digits_npz):
    pytest.importorskip("deepspeed")
    from edge_sdk.loaders.torch_weights import apply_weights

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    port = str(_free_port())
    ranks = [subprocess.Popen([sys.executable, "-m", "tests.converters.deepspeed_train", tmp_path / "ds3", digits_npz[0], "--stage", "3", "--bf16",
                               "--rank", str(rank), "--world-size", "2", "--port", port], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
             for rank in (0, 1)]
    for process in ranks:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
    assert len(list((tmp_path / "ds3").glob("*/zero_pp_rank_*_model_states.pt"))) == 2
    assert len(list((tmp_path / "ds3").glob("*/bf16_zero_pp_rank_*_optim_states.pt"))) == 2  # bf16 training, fp32 masters
    model = torch_nets.digits_cnn()
    described = apply_weights(model, tmp_path / "ds3", trust_model=True)
    assert described["zero_stage"] == "3"
    assert torch_nets.accuracy(model.eval(), digits_npz[1]) >= 0.9


@pytest.mark.slow
def test_a_torch_onnx_export_opset_20_goes_to_tflite_through_a_lower_opset(tmp_path, digits_npz, trained):
    """torch.onnx.export writes opset 20 with Reshape version 19 and allowzero=1, which onnx2torch refuses: the
    graph is converted down to opset 17 (noted in the manifest) and the inert allowzero dropped. The TFLite artifact
    (NHWC) equals the ONNX file under bare ONNX Runtime / LiteRT."""
    import onnx
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter
    from safetensors.torch import save_file

    train, test = digits_npz
    weights = tmp_path / "cnn.safetensors"
    save_file(trained[0].state_dict(), weights)
    exported, tflite = tmp_path / "cnn.onnx", tmp_path / "cnn_nhwc.tflite"
    edge_sdk("convert", FACTORY, "--weights", weights, "--to", "onnx", "--quant", "fp32", "--calib", train, *DIGITS, "-o", exported)
    assert max(entry.version for entry in onnx.load(str(exported), load_external_data=False).opset_import if entry.domain in ("", "ai.onnx")) > 17
    edge_sdk("convert", exported, "--to", "tflite", "--quant", "fp32", "--nhwc-input", "--calib", train, "--scale", "1/16", "--layout", "NHWC", "-o", tflite)
    manifest = manifest_of(tflite)
    assert manifest["validation"]["status"] == "passed"
    assert any(note.startswith("converted from opset") and "down to 17 for onnx2torch" in note for note in manifest["source"]["notes"])
    images = np.load(test)["x"][:50].astype(np.float32) / 16
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    expected = np.concatenate([session.run(None, {session.get_inputs()[0].name: image[None, None]})[0] for image in images])
    interpreter = Interpreter(model_path=str(tflite))
    interpreter.allocate_tensors()
    (entry,), (exit_,) = interpreter.get_input_details(), interpreter.get_output_details()
    ours = []
    for image in images:
        interpreter.set_tensor(entry["index"], image[None, :, :, None])
        interpreter.invoke()
        ours.append(interpreter.get_tensor(exit_["index"])[0])
    assert np.abs(np.stack(ours) - expected).max() <= 1e-4
