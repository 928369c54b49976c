"""PyTorch and ONNX -> TFLite (fp32, fp16, dynamic, int8 with int8 I/O, int16x8), validated against the source.

Sources: an nn.Module, a `package.module:factory` spec (optionally with `--weights`, edge_sdk.loaders.torch_weights),
a `.pt2` ExportedProgram, or an `.onnx` model (lifted to opset 13 by the ONNX intake, then turned into an nn.Module
by onnx2torch). litert-torch exports the module; ai-edge-quantizer (or litert-torch's PT2E quantizer) quantizes it
(edge_sdk.loaders.torch_to_tflite). The artifact is validated against the PyTorch module on real data with the same
per-mode cosine thresholds as the Keras path (converters.tflite.MIN_COSINE).

PyTorch takes NCHW. `nhwc_input` puts a transpose in front of the model so that the artifact takes NHWC (what
Android camera pipelines feed); `--layout` keeps its meaning, the layout the data is fed in. The manifest records both.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk import metrics
from edge_sdk._lazy import require
from edge_sdk.artifact import Artifact, load_artifact, manifest_path_for
from edge_sdk.data import Dataset, InputBinding, PreprocessSpec
from edge_sdk.environment import package_versions
from edge_sdk.errors import ConversionError, ModelFileError, UsageError
from edge_sdk.fileio import atomic_path, check_can_write, gzip_size_of, sha256_of
from edge_sdk.inspection import analyze_tflite
from edge_sdk.loaders import torch_to_tflite as t2t
from edge_sdk.loaders.torch_weights import TorchModelSpec, factory_model
from edge_sdk.manifest import manifest_from_record, write_manifest
from edge_sdk.progress import Progress

TORCH_SUFFIXES = (".pt2", ".pt", ".pth", ".ts")


def handles(model: Any) -> bool:
    """True for a source this module converts (PyTorch or ONNX), without importing torch."""
    from edge_sdk.loaders.to_onnx import is_factory_spec

    if isinstance(model, TorchModelSpec) or is_factory_spec(model):
        return True
    if isinstance(model, (str, Path)):
        return Path(model).suffix.lower() in TORCH_SUFFIXES + (".onnx",)
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


class _Source:
    """The PyTorch module to convert (as the artifact will be fed), and what the manifest says about it."""

    def __init__(self, module: Any, shapes: list[tuple[str, list[int]]], record: dict[str, Any]) -> None:
        self.module = module
        self.shapes = shapes  # (name, full shape) as the PyTorch module takes them (NCHW)
        self.record = record


def load_source(model: Any, input_shapes: dict[str, list[int]] | None) -> _Source:
    """Load any accepted source as an nn.Module in eval mode with its input shapes."""
    from edge_sdk.loaders.to_onnx import is_factory_spec, torch_source

    torch = require("torch", "PyTorch to TFLite")
    if isinstance(model, str) and is_factory_spec(model):
        model = TorchModelSpec(model)
    if isinstance(model, TorchModelSpec):
        module, weights = factory_model(model)
        record: dict[str, Any] = {"path": model.factory, "kind": "pytorch_factory", "framework": "torch", "weights": weights}
        return _Source(module, _given_shapes(input_shapes, str(model)), {**record, "parameters": _parameters(module)})
    if isinstance(model, torch.nn.Module):
        return _Source(model.eval(), _given_shapes(input_shapes, type(model).__name__), {"path": type(model).__name__, "kind": "pytorch_module", "framework": "torch", "parameters": _parameters(model)})
    path = Path(model)
    if path.suffix.lower() == ".onnx":
        return _onnx_source(path, input_shapes)
    loaded = torch_source(path)
    if loaded.kind == "torchscript":
        raise ModelFileError(f"{path} is TorchScript, which litert-torch cannot convert (it traces with torch.export)",
                             fix="export the model as a program: torch.export.save(torch.export.export(model, example_inputs), 'model.pt2')")
    module = loaded.model.module()
    shapes = input_shapes or {name: shape for name, shape in _program_shapes(loaded.model)}
    record = {"path": str(path), "sha256": sha256_of(path), "kind": "pt2", "framework": "torch", "parameters": _parameters(module)}
    return _Source(module, _given_shapes(shapes, str(path)), record)


def _onnx_source(path: Path, input_shapes: dict[str, list[int]] | None) -> _Source:
    """ONNX -> nn.Module with onnx2torch, after the intake's opset lift (onnx2torch refuses opset-1 `Constant`)."""
    from edge_sdk.loaders.onnx_intake import load_onnx
    from edge_sdk.models import resolve_input_shapes

    loaded = load_onnx(path)
    shapes = resolve_input_shapes(loaded.signature, input_shapes, path)
    onnx2torch = t2t.import_onnx2torch()
    try:
        module = t2t.static_reshapes(onnx2torch.convert(t2t.explicit_pads(t2t.constants_to_initializers(loaded.model))))
    except (NotImplementedError, ValueError, KeyError, RuntimeError, TypeError) as error:
        raise ConversionError(f"onnx2torch could not turn {path} into a PyTorch module: {type(error).__name__}: {error}",
                              fix="check every op of the model is in onnx2torch's support list, or convert it to ONNX and run it with ONNX Runtime") from error
    record = {"path": str(path), "sha256": sha256_of(path), "kind": "onnx", "framework": "onnx", "parameters": loaded.parameter_count, "notes": loaded.notes, "via": "onnx2torch"}
    return _Source(module.eval(), shapes, record)


def _program_shapes(program: Any) -> list[tuple[str, list[int]]]:
    """The user inputs of an ExportedProgram with the shapes it was exported at."""
    users = set(program.graph_signature.user_inputs)
    shapes = []
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in users:
            value = node.meta.get("val")
            if value is None or not all(isinstance(d, int) for d in value.shape):
                raise UsageError(f"input {node.name!r} of the program has a dynamic shape", fix="pass --input-shape with concrete sizes")
            shapes.append((node.name, [int(d) for d in value.shape]))
    return shapes


def _given_shapes(shapes: dict[str, list[int]] | None, source: str) -> list[tuple[str, list[int]]]:
    if not shapes:
        raise UsageError(f"converting the PyTorch model {source} needs its example input shape (NCHW, as PyTorch takes it)",
                         fix="pass --input-shape 1,1,28,28 (API: input_shapes={'': [1, 1, 28, 28]})")
    return [(name or f"input_{index}", list(shape)) for index, (name, shape) in enumerate(shapes.items())]


def _parameters(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def convert(model: Any, output: Path, options: Any, calibration: Dataset | None = None, *, validation: Dataset | None = None,
            preprocess: PreprocessSpec | None = None, overwrite: bool = False, progress: Progress | None = None) -> Artifact:
    """Convert a PyTorch or ONNX source to `output` (.tflite) with its manifest; `options` is a TFLiteOptions."""
    from converters.tflite import CALIBRATED_MODES

    progress = progress or Progress(enabled=False)
    output = Path(output)
    check_can_write(output, overwrite, "artifact")
    check_can_write(manifest_path_for(output), overwrite, "manifest")
    quantizer = getattr(options, "torch_quantizer", None) or t2t.DEFAULT_INT8_QUANTIZER
    if quantizer not in t2t.INT8_QUANTIZERS:
        raise UsageError(f"--torch-quantizer {quantizer!r} is not one of {', '.join(t2t.INT8_QUANTIZERS)}")
    if options.float_nodes or options.float_ops:
        raise UsageError("float nodes / ops (selective quantization) apply to Keras and SavedModel sources only, not PyTorch or ONNX")
    if options.mode in CALIBRATED_MODES and calibration is None:
        raise UsageError(f"--quant {options.mode} needs calibration data", fix="pass --calib DATA (.npz, .npy or an image folder)")
    source = load_source(model, options.input_shapes)
    nhwc = bool(getattr(options, "nhwc_input", False))
    module = t2t.wrap_nhwc(source.module, len(source.shapes)) if nhwc else source.module
    shapes = [(name, t2t.nchw_to_nhwc(shape) if nhwc else shape) for name, shape in source.shapes]
    binding = InputBinding.bind(calibration, shapes) if calibration else None

    started = time.perf_counter()
    progress.message(f"converting {source.record['path']} to TFLite {options.mode} with litert-torch ...")
    flatbuffer = t2t.float_flatbuffer(module, [shape for _, shape in shapes])
    used = 0
    if options.mode != "fp32":
        batches: list[list[np.ndarray]] = []
        if options.mode in CALIBRATED_MODES and calibration is not None and binding is not None:
            indices = calibration.subset(options.calibration_samples, options.seed)
            batches = [[fitted[name].astype(np.float32) for name, _ in binding.model_inputs] for fitted in (binding.fit(s, str(calibration.path)) for s in calibration.samples(indices))]
            used = len(batches)
        if options.mode == "int8" and quantizer == "pt2e":
            flatbuffer = t2t.pt2e_quantize(module, [shape for _, shape in shapes], batches)
        else:
            flatbuffer = t2t.aeq_quantize(flatbuffer, options.mode, batches)
        if options.mode == "int8" and not options.allow_float_fallback:
            flatbuffer = t2t.integer_io(flatbuffer, "int8")
    seconds = time.perf_counter() - started
    analysis = analyze_tflite(flatbuffer, str(output))
    if options.mode == "int8" and not options.allow_float_fallback and analysis["integer_op_share"] < 1.0:
        floats = sorted({op for op in analysis["ops"] if op not in ("QUANTIZE", "DEQUANTIZE")})
        raise ConversionError(f"the int8 model of {source.record['path']} is not full integer ({100 * analysis['integer_op_share']:.0f}% of compute ops in integer; ops: {', '.join(floats)})",
                              fix="an op without an int8 kernel stays in float; pass --allow-float-fallback to keep it so")

    with atomic_path(output) as tmp:
        tmp.write_bytes(flatbuffer)
        report = _validate(tmp, module, validation or calibration, shapes, options, source.record["path"])
        spec = calibration.spec if calibration else (validation.spec if validation else preprocess)
        record = _manifest(source, options, quantizer, analysis, calibration, used, report, seconds, tmp, shapes, spec, nhwc)
        write_manifest(output, manifest_from_record(record, where=f"manifest of {output}"))
    return load_artifact(output)


def run_module(module: Any, arrays: list[np.ndarray]) -> np.ndarray:
    """The module's first output for a batch of inputs (float32 numpy)."""
    torch = require("torch")
    with torch.no_grad():
        result = module(*[torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in arrays])
    first = result[0] if isinstance(result, (list, tuple)) else result
    return first.detach().float().numpy()


def _validate(tflite_path: Path, module: Any, data: Dataset | None, shapes: list[tuple[str, list[int]]], options: Any, source: str) -> dict[str, Any]:
    """Run the artifact and the PyTorch module (as fed, NHWC wrapper included) on the same real samples."""
    from converters.tflite import MIN_COSINE
    from targets.runners.litert import LiteRTRunner

    if data is None:
        return {"status": "skipped", "reason": "no data given (pass --calib or --validate-data)"}
    indices = data.subset(options.validation_samples, options.seed + 1)
    binding = InputBinding.bind(data, shapes)
    artifact_outputs, source_outputs = [], []
    with LiteRTRunner(tflite_path) as runner:
        for sample in data.samples(indices):
            fitted = binding.fit(sample, str(data.path))
            by_runner_name = {spec.name: fitted[name] for spec, (name, _) in zip(runner.inputs, binding.model_inputs)}
            artifact_outputs.append(next(iter(runner.infer(by_runner_name).values()))[0])
            source_outputs.append(run_module(module, [fitted[name] for name, _ in binding.model_inputs])[0])
    measured = metrics.fidelity(np.stack(artifact_outputs), np.stack(source_outputs))
    figures: dict[str, float | None] = {key: (None if value is None or not np.isfinite(value) else float(value)) for key, value in measured.items()}
    cosine = figures["cosine_mean"] if figures["cosine_mean"] is not None else 1.0
    status = "passed" if cosine >= MIN_COSINE[options.mode] else "failed"
    if status == "failed":
        raise ConversionError(
            f"the {options.mode} TFLite model does not behave like {source}: mean cosine {cosine:.4f} < {MIN_COSINE[options.mode]} "
            f"on {len(artifact_outputs)} real samples (SQNR {figures['sqnr_db']} dB)",
            fix="check the calibration data matches the evaluation preprocessing and --layout / --nhwc-input",
        )
    return {"status": status, "samples": len(artifact_outputs), "min_cosine": MIN_COSINE[options.mode], "reference": "pytorch", **figures}


def _manifest(source: _Source, options: Any, quantizer: str, analysis: dict[str, Any], calibration: Dataset | None, used: int, validation: dict[str, Any],
              seconds: float, artifact_file: Path, shapes: list[tuple[str, list[int]]], spec: PreprocessSpec | None, nhwc: bool) -> dict[str, Any]:
    quantized_by = None if options.mode == "fp32" else ("litert-torch PT2EQuantizer" if options.mode == "int8" and quantizer == "pt2e" else "ai-edge-quantizer")
    return {
        "format": "tflite",
        "mode": options.mode,
        "options": asdict(options),
        "source": source.record,
        "input_shapes": {name: shape for name, shape in shapes},
        "io": analysis["io"],
        "preprocess": spec.to_dict() if spec else None,
        "calibration": {"path": str(calibration.path), "sha256": sha256_of(calibration.path), "samples": used, "seed": options.seed} if calibration and used else None,
        "quantization_ranges": f"calibrated on {used} samples" if used else None,
        "ops": analysis["ops"],
        "op_count": analysis["op_count"],
        "integer_op_share": analysis["integer_op_share"],
        "weight_bytes": analysis["weight_bytes"],
        "size_bytes": artifact_file.stat().st_size,
        "gzip_size_bytes": gzip_size_of(artifact_file),
        "sha256": sha256_of(artifact_file),
        "conversion_seconds": round(seconds, 3),
        "validation": validation,
        # PyTorch takes NCHW; with nhwc_input the artifact takes NHWC. `layout` is the preprocessing's (how data is fed).
        "details": {"converter": "litert-torch", "quantized_by": quantized_by, "nhwc_input": nhwc, "layout": spec.layout if spec else None,
                    "torch_input_shapes": {name: shape for name, shape in source.shapes}},
        "toolchain": package_versions(("torch", "litert-torch", "ai-edge-quantizer", "ai-edge-litert", "onnx", "onnx2torch", "numpy")),
    }
