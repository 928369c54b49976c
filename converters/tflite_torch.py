"""PyTorch and ONNX -> TFLite (fp32, fp16, dynamic, int8 with int8 I/O, int16x8), validated against the source.

Sources: an nn.Module, a `package.module:factory` spec (optionally with `--weights`, edge_sdk.loaders.torch_weights),
a `.pt2` ExportedProgram, or an `.onnx` model (lifted to opset 13 by the ONNX intake, then turned into an nn.Module
by onnx2torch). litert-torch exports the module; ai-edge-quantizer (or litert-torch's PT2E quantizer) quantizes it
(edge_sdk.loaders.torch_to_tflite). The artifact is validated against the PyTorch module on real data with the same
per-mode tolerances as the Keras path (the TFLite row of edge_sdk.formats), through the converter template
(converters.base): `BUILDER` is the TFLite format's builder for these sources.

PyTorch takes NCHW. `nhwc_input` puts a transpose in front of the model so that the artifact takes NHWC (what
Android camera pipelines feed); `--layout` keeps its meaning, the layout the data is fed in. The manifest records both.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from converters.base import Builder, Conversion
from edge_sdk._lazy import require
from edge_sdk.data import InputBinding
from edge_sdk.environment import package_versions
from edge_sdk.errors import ConversionError, ModelFileError, UsageError
from edge_sdk.fileio import gzip_size_of, sha256_of
from edge_sdk.formats import FP32, INT8
from edge_sdk.inspection import analyze_tflite
from edge_sdk.loaders import torch_to_tflite as t2t
from edge_sdk.loaders.torch_weights import TorchModelSpec, factory_model

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
    notes = list(loaded.notes)
    try:
        module = _onnx_to_module(onnx2torch, loaded.model, notes)
    except (NotImplementedError, ValueError, KeyError, RuntimeError, TypeError) as error:
        raise ConversionError(f"onnx2torch could not turn {path} into a PyTorch module: {type(error).__name__}: {error}",
                              fix="check every op of the model is in onnx2torch's support list, or convert it to ONNX and run it with ONNX Runtime") from error
    record = {"path": str(path), "sha256": sha256_of(path), "kind": "onnx", "framework": "onnx", "parameters": loaded.parameter_count, "notes": notes, "via": "onnx2torch"}
    return _Source(module.eval(), shapes, record)


# onnx2torch 1.5.15 has converters for op versions up to about opset 17 (measured: torch.onnx.export's opset-20
# Reshape is version 19, which it refuses); newer graphs are converted down to this opset, where ONNX can.
ONNX2TORCH_OPSET = 17


def _onnx_to_module(onnx2torch: Any, model: Any, notes: list[str]) -> Any:
    """The ONNX graph as an nn.Module; a graph whose op versions onnx2torch does not know yet is converted down to
    opset ONNX2TORCH_OPSET with ONNX's version converter and tried again (noted), else the first error stands."""
    from edge_sdk._lazy import require

    def convert(graph: Any) -> Any:
        return t2t.static_reshapes(onnx2torch.convert(_inert_allowzero_dropped(t2t.explicit_pads(t2t.constants_to_initializers(graph)))))

    try:
        return convert(model)
    except NotImplementedError as error:
        opset = max((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), default=0)
        if opset <= ONNX2TORCH_OPSET:
            raise
        onnx = require("onnx", "converting ONNX models to TFLite")
        try:
            lowered = onnx.version_converter.convert_version(model, ONNX2TORCH_OPSET)
        except Exception:  # noqa: BLE001 - ONNX's converter raises plain RuntimeErrors or its own; the first error is the one to show
            raise error from None
        module = convert(lowered)
        notes.append(f"converted from opset {opset} down to {ONNX2TORCH_OPSET} for onnx2torch ({error})")
        return module


def _inert_allowzero_dropped(model: Any) -> Any:
    """`Reshape(allowzero=1)` (torch.onnx.export writes it) differs from the default only where the target shape
    holds a 0; onnx2torch refuses the attribute. Where the shape is a constant without zeros it changes nothing,
    so it is removed (on the graph copy the intake made); elsewhere it stays, and onnx2torch says so."""
    from edge_sdk._lazy import require

    numpy_helper = require("onnx", "converting ONNX models to TFLite").numpy_helper
    constants = {tensor.name: tensor for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in constants:
            continue
        inert = bool(numpy_helper.to_array(constants[node.input[1]]).all())
        kept = [attribute for attribute in node.attribute if not (inert and attribute.name == "allowzero")]
        del node.attribute[:]
        node.attribute.extend(kept)
    return model


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


class TorchTFLiteBuilder(Builder):
    """The TFLite format's builder for PyTorch and ONNX sources (converters.tflite hands them over: `for_source`)."""

    def check(self, conversion: Conversion) -> None:
        options = conversion.options
        if _quantizer(options) not in t2t.INT8_QUANTIZERS:
            raise UsageError(f"--torch-quantizer {options.torch_quantizer!r} is not one of {', '.join(t2t.INT8_QUANTIZERS)}")
        if options.float_nodes or options.float_ops:
            raise UsageError("float nodes / ops (selective quantization) apply to Keras and SavedModel sources only, not PyTorch or ONNX")
        super().check(conversion)

    def load(self, conversion: Conversion) -> Any:
        source = load_source(conversion.source, conversion.data.input_shapes)
        nhwc = bool(conversion.options.nhwc_input)
        module = t2t.wrap_nhwc(source.module, len(source.shapes)) if nhwc else source.module
        conversion.shapes = [(name, t2t.nchw_to_nhwc(shape) if nhwc else shape) for name, shape in source.shapes]
        conversion.details.update(torch_source=source, module=module, nhwc=nhwc)
        return source

    def build(self, conversion: Conversion) -> None:
        options, calibration, module = conversion.options, conversion.calibration, conversion.details["module"]
        shapes = [shape for _, shape in conversion.shapes]
        quantizer = _quantizer(options)
        conversion.progress.message(f"converting {conversion.loaded.record['path']} to TFLite {options.mode} with litert-torch ...")
        flatbuffer = t2t.float_flatbuffer(module, shapes)
        used = 0
        if options.mode != FP32:
            batches: list[list[np.ndarray]] = []
            if conversion.format.needs_calibration(options.mode) and calibration is not None:
                binding = InputBinding.bind(calibration, conversion.shapes)
                indices = calibration.subset(conversion.data.calibration_samples, conversion.data.seed)
                batches = [[fitted[name].astype(np.float32) for name, _ in binding.model_inputs] for fitted in (binding.fit(s, str(calibration.path)) for s in calibration.samples(indices))]
                used = len(batches)
            if options.mode == INT8 and quantizer == "pt2e":
                flatbuffer = t2t.pt2e_quantize(module, shapes, batches)
            else:
                flatbuffer = t2t.aeq_quantize(flatbuffer, options.mode, batches)
            if options.mode == INT8 and not options.allow_float_fallback:
                flatbuffer = t2t.integer_io(flatbuffer, INT8)
        analysis = analyze_tflite(flatbuffer, str(conversion.output))
        if options.mode == INT8 and not options.allow_float_fallback and analysis["integer_op_share"] < 1.0:
            floats = sorted({op for op in analysis["ops"] if op not in ("QUANTIZE", "DEQUANTIZE")})
            raise ConversionError(f"the int8 model of {conversion.loaded.record['path']} is not full integer ({100 * analysis['integer_op_share']:.0f}% of compute ops in integer; ops: {', '.join(floats)})",
                                  fix="an op without an int8 kernel stays in float; pass --allow-float-fallback to keep it so")
        conversion.staged.write_bytes(flatbuffer)
        conversion.details.update(analysis=analysis, calibration_used=used, quantizer=quantizer)

    def artifact_runner(self, conversion: Conversion) -> Any:
        from targets.runners.litert import LiteRTRunner

        return LiteRTRunner(conversion.staged)

    def source_outputs(self, conversion: Conversion, samples: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
        """The PyTorch module as fed (the NHWC wrapper included), every output, one sample at a time."""
        module, names = conversion.details["module"], [name for name, _ in conversion.shapes]
        rows = [run_module_outputs(module, [sample[name] for name in names]) for sample in samples]
        return [np.concatenate([row[index] for row in rows]) for index in range(len(rows[0]))]

    def validation_extra(self, conversion: Conversion) -> dict[str, Any]:
        return {"reference": "pytorch"}

    def manifest(self, conversion: Conversion, validation: dict[str, Any]) -> dict[str, Any]:
        return _manifest(conversion, validation)

    def conversion_fix(self, conversion: Conversion) -> str:
        return "check the calibration data matches the evaluation preprocessing and --layout / --nhwc-input"


BUILDER = TorchTFLiteBuilder()


def _quantizer(options: Any) -> str:
    return str(getattr(options, "torch_quantizer", None) or t2t.DEFAULT_INT8_QUANTIZER)


def run_module_outputs(module: Any, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Every output of the module for a batch of inputs (float32 numpy)."""
    torch = require("torch")
    with torch.no_grad():
        result = module(*[torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in arrays])
    return [value.detach().float().numpy() for value in (result if isinstance(result, (list, tuple)) else [result])]


def run_module(module: Any, arrays: list[np.ndarray]) -> np.ndarray:
    """The module's first output for a batch of inputs (float32 numpy)."""
    return run_module_outputs(module, arrays)[0]


def _manifest(conversion: Conversion, validation: dict[str, Any]) -> dict[str, Any]:
    options, details, source = conversion.options, conversion.details, conversion.loaded
    analysis, used, quantizer, spec = details["analysis"], details["calibration_used"], details["quantizer"], conversion.spec
    calibration = conversion.calibration
    quantized_by = None if options.mode == FP32 else ("litert-torch PT2EQuantizer" if options.mode == INT8 and quantizer == "pt2e" else "ai-edge-quantizer")
    return {
        "format": conversion.format.name,
        "mode": options.mode,
        "options": {**asdict(options), **conversion.data.record()},
        "source": source.record,
        "input_shapes": {name: shape for name, shape in conversion.shapes},
        "io": analysis["io"],
        "preprocess": spec.to_dict() if spec else None,
        "calibration": {"path": str(calibration.path), "sha256": sha256_of(calibration.path), "samples": used, "seed": conversion.data.seed} if calibration and used else None,
        "quantization_ranges": f"calibrated on {used} samples" if used else None,
        "ops": analysis["ops"],
        "op_count": analysis["op_count"],
        "integer_op_share": analysis["integer_op_share"],
        "weight_bytes": analysis["weight_bytes"],
        "gzip_size_bytes": gzip_size_of(conversion.staged),
        "conversion_seconds": round(conversion.seconds, 3),
        "validation": validation,
        # PyTorch takes NCHW; with nhwc_input the artifact takes NHWC. `layout` is the preprocessing's (how data is fed).
        "details": {"converter": "litert-torch", "quantized_by": quantized_by, "nhwc_input": details["nhwc"], "layout": spec.layout if spec else None,
                    "torch_input_shapes": {name: shape for name, shape in source.shapes}},
        "toolchain": package_versions(("torch", "litert-torch", "ai-edge-quantizer", "ai-edge-litert", "onnx", "onnx2torch", "numpy")),
    }
