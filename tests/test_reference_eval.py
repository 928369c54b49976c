"""A PyTorch model as the float reference of a bench (edge_sdk.reference_eval, targets/runners/pytorch.py): the
artifacts are measured against the PyTorch model itself, fed as each artifact's manifest says (NCHW, or NHWC for a
TFLite artifact converted with --nhwc-input). Real litert-torch, ai-edge-quantizer, LiteRT, ONNX Runtime and torch;
the figures are recomputed here with torch and the bare runtimes."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import edge_sdk_checked as edge_sdk

torch = pytest.importorskip("torch")
pytest.importorskip("litert_torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from tests.converters import torch_nets  # noqa: E402

FACTORY = "tests.converters.torch_nets:digits_cnn"
SCALE = 1 / 16




@pytest.fixture(scope="module")
def twins(tmp_path_factory, digits_npz):
    """The digits CNN trained for a second, its weights as safetensors, and its int8 twins: TFLite taking NHWC
    (--nhwc-input) and ONNX taking NCHW, as PyTorch does."""
    folder = tmp_path_factory.mktemp("torch_reference")
    train, test = digits_npz
    model = torch_nets.train_digits(torch_nets.digits_cnn(), train)
    weights = folder / "cnn.safetensors"
    safetensors_torch.save_file(model.state_dict(), weights)
    tflite, onnx = folder / "cnn_nhwc_int8.tflite", folder / "cnn_int8.onnx"
    common = ["--weights", weights, "--quant", "int8", "--calib", train, "--validate-data", test, "--scale", "1/16", "--input-shape", "1,1,8,8", "--quiet"]
    edge_sdk("convert", FACTORY, "--to", "tflite", "--nhwc-input", "--layout", "NHWC", *common, "-o", tflite)
    edge_sdk("convert", FACTORY, "--to", "onnx", "--layout", "NCHW", *common, "-o", onnx)
    return {"model": model, "weights": weights, "tflite": tflite, "onnx": onnx, "folder": folder}


def _bare_tflite(path: Path, images: np.ndarray) -> np.ndarray:
    """Logits of the int8 TFLite artifact, one NHWC image per call, with the bare LiteRT interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    (in_scale, in_zero), (out_scale, out_zero) = given["quantization"], taken["quantization"]
    rows = []
    for image in images:
        quantized = np.clip(np.round(image[None, :, :, None] / in_scale) + in_zero, -128, 127).astype(np.int8)
        interpreter.set_tensor(given["index"], quantized)
        interpreter.invoke()
        rows.append((interpreter.get_tensor(taken["index"]).astype(np.float32) - out_zero) * out_scale)
    return np.concatenate(rows)


def _bare_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: image[None, None].astype(np.float32)})[0] for image in images])


def _sqnr_db(outputs: np.ndarray, reference: np.ndarray) -> float:
    noise = np.sum((outputs.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return 10 * math.log10(np.sum(reference.astype(np.float64) ** 2) / noise)


@pytest.mark.slow
def test_int8_twins_benched_against_the_pytorch_model_itself_match_figures_recomputed_here(twins, digits_npz):
    test = digits_npz[1]
    result = edge_sdk("bench", twins["tflite"], twins["onnx"], "--data", test, "--reference", FACTORY, "--reference-weights", twins["weights"],
                      "--runs", "3", "--warmup", "1", "--json")
    results = {r["artifact"]["name"]: r for r in json.loads(result.stdout)["results"]}
    with np.load(test) as data:
        images, labels = data["x"].astype(np.float32) * SCALE, data["y"]
    with torch.no_grad():
        expected = twins["model"](torch.from_numpy(images[:, None])).numpy()  # the PyTorch model itself, NCHW
    float_top1 = float(np.mean(expected.argmax(1) == labels))
    for name, outputs in ((twins["tflite"].name, _bare_tflite(twins["tflite"], images)), (twins["onnx"].name, _bare_onnx(twins["onnx"], images))):
        record = results[name]
        assert record["status"] == "ok", record.get("error")
        reference = record["reference"]
        assert reference["runtime"]["runtime"] == "pytorch" and reference["runtime"]["weights"]["kind"] == "safetensors"
        assert reference["runtime"]["nhwc_input"] is name.endswith(".tflite")  # the TFLite twin takes NHWC, PyTorch NCHW
        assert reference["accuracy"]["top1"] == pytest.approx(float_top1, abs=1e-12)
        top1 = float(np.mean(outputs.argmax(1) == labels))
        assert record["accuracy"]["top1"] == pytest.approx(top1, abs=1e-12)
        assert reference["accuracy_drop_points"] == pytest.approx(100 * (float_top1 - top1), abs=1e-9)
        fidelity = reference["fidelity"]
        assert fidelity["top1_agreement"] == pytest.approx(float(np.mean(outputs.argmax(1) == expected.argmax(1))), abs=1e-12)
        assert fidelity["sqnr_db"] == pytest.approx(_sqnr_db(outputs, expected), abs=1e-3)
        assert fidelity["max_abs_error"] == pytest.approx(float(np.max(np.abs(outputs - expected))), abs=1e-4)
        assert abs(top1 - float_top1) <= 0.015, (name, top1, float_top1)
    # Computed once per feed: the two twins take different layouts, so neither reuses the other's outputs.
    assert {r["reference"]["cache"] for r in results.values()} == {"computed"}


@pytest.mark.slow
def test_bad_pytorch_references_give_one_message_their_exit_code_and_write_nothing(twins, digits_npz):
    folder, state = twins["folder"], twins["model"].state_dict()
    safetensors_torch.save_file({k: v for k, v in state.items() if not k.startswith("6.")}, folder / "missing.safetensors")
    deepspeed = folder / "ds"  # a DeepSpeed checkpoint's layout: refused for being pickles before any file is read
    (deepspeed / "global_step1").mkdir(parents=True, exist_ok=True)
    (deepspeed / "latest").write_text("global_step1")
    (deepspeed / "global_step1" / "mp_rank_00_model_states.pt").write_bytes(b"not read without --trust-model")
    bare = folder / "bare"
    bare.mkdir(exist_ok=True)
    shutil.copy(twins["tflite"], bare / "no_manifest.tflite")
    cases = [
        ((twins["onnx"], "--reference", "tests.converters.no_such_module:digits_cnn", "--reference-weights", twins["weights"]), 2, "cannot import module"),
        ((twins["onnx"], "--reference", FACTORY, "--reference-weights", folder / "missing.safetensors"), 3, "2 missing keys: 6.weight, 6.bias"),
        ((twins["onnx"], "--reference", FACTORY, "--reference-weights", deepspeed), 2, "--trust-model"),
        ((bare / "no_manifest.tflite", "--reference", FACTORY, "--reference-weights", twins["weights"]), 4, "has no manifest"),
        ((twins["onnx"], "--reference", folder / "cnn.keras", "--reference-weights", twins["weights"]), 2, "--reference-weights applies to a PyTorch"),
    ]
    if importlib.util.find_spec("deepspeed"):
        # With --trust-model the pickles are read, in the reference's worker process: a corrupt one is one message.
        cases.append(((twins["onnx"], "--reference", FACTORY, "--reference-weights", deepspeed, "--trust-model"), 3, "DeepSpeed could not consolidate"))
    out = folder / "out"
    out.mkdir(exist_ok=True)
    for args, code, message in cases:
        result = edge_sdk("bench", *args, "--data", digits_npz[1], "--runs", "2", "-o", out / "r.json", check=False)
        assert result.returncode == code and message in result.stderr, (args, result.returncode, result.stderr[-2000:])
        lines = result.stderr.strip().splitlines()  # one message: the error and its fix, nothing else
        assert "Traceback" not in result.stderr and result.stdout == "" and lines[0].startswith("error: "), result.stderr
        assert all(line.startswith("  fix: ") for line in lines[1:]) and len(lines) <= 2, result.stderr
    assert list(out.iterdir()) == []


def test_the_reference_cache_key_follows_the_factory_the_weights_content_the_trust_flag_and_the_feed(tmp_path, digits_npz):
    from edge_sdk.bench import BenchSettings
    from edge_sdk.data import Dataset, PreprocessSpec
    from edge_sdk.loaders.torch_weights import TorchModelSpec
    from edge_sdk.progress import Progress
    from edge_sdk.reference_eval import ReferenceCache, TorchReference

    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    safetensors_torch.save_file({"w": torch.zeros(3)}, first)
    safetensors_torch.save_file({"w": torch.ones(3)}, second)
    dataset = Dataset(digits_npz[1], PreprocessSpec.from_dict({"scale": SCALE}))
    shapes = {"input_0": [1, 1, 8, 8]}

    def key(spec: TorchModelSpec, nhwc: bool = False) -> str:
        return ReferenceCache(spec, BenchSettings(), Progress(enabled=False)).key(dataset, [0, 1], TorchReference(spec, shapes, nhwc))

    base = key(TorchModelSpec(FACTORY, first))
    assert base == key(TorchModelSpec(FACTORY, first))
    copy = tmp_path / "copy_of_a.safetensors"
    shutil.copy(first, copy)
    assert key(TorchModelSpec(FACTORY, copy)) == base  # by content, not by name
    others = [key(TorchModelSpec(FACTORY, second)), key(TorchModelSpec(FACTORY, first, trust_model=True)), key(TorchModelSpec(FACTORY, first), nhwc=True),
              key(TorchModelSpec("tests.converters.torch_nets:digits_cnn_wider", first)), key(TorchModelSpec(FACTORY))]
    assert len({base, *others}) == 1 + len(others)


@pytest.mark.slow
def test_a_device_bench_takes_the_pytorch_reference_too(twins, digits_npz):
    """`bench --host` (edge_sdk.remote) through the local transport: the reference runs on the host, fed as the
    artifact's manifest says, with the figures of the same bench run here."""
    from edge_sdk.api import bench, bench_on_devices
    from edge_sdk.bench import BenchSettings

    settings = dict(runs=2, warmup=0, max_samples=60)
    pytorch = dict(reference=FACTORY, reference_weights=twins["weights"])
    remote = bench_on_devices([twins["tflite"]], digits_npz[1], target="desktop", hosts=["local"], settings=BenchSettings(**settings), **pytorch)[0]
    here = bench([twins["tflite"]], digits_npz[1], settings=BenchSettings(**settings), **pytorch)[0]
    assert remote.status == "ok" and here.status == "ok", (remote.error, here.error)
    assert remote.reference["runtime"]["runtime"] == "pytorch" and remote.reference["runtime"]["nhwc_input"] is True
    assert remote.reference["fidelity"] == pytest.approx(here.reference["fidelity"])
    assert remote.reference["accuracy"]["top1"] == here.reference["accuracy"]["top1"]
