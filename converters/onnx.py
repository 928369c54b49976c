"""Keras / SavedModel / PyTorch / ONNX -> ONNX in fp32, fp16, dynamic int8 and static int8 (QDQ).

Sources come in through edge_sdk.loaders (opset lifting, tf2onnx, torch.onnx.export). Static
int8 runs ORT's `quant_pre_process`, then `quantize_static` in QDQ format with a calibration
reader that streams the Dataset one sample at a time. Every artifact is validated against its
source (Keras, the PyTorch module, or the float ONNX model) on real data before it is kept.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk._lazy import require
from edge_sdk.artifact import Artifact, load_artifact, manifest_path_for
from edge_sdk.manifest import manifest_from_record, write_manifest
from edge_sdk.compression.weights import weight_statistics_of_model
from edge_sdk.data import Dataset, InputBinding, PreprocessSpec
from edge_sdk.environment import package_versions
from edge_sdk.errors import ConversionError, EdgeSdkError, UsageError
from edge_sdk.fileio import check_can_write, gzip_size_of, sha256_of
from edge_sdk.loaders.onnx_intake import default_opset, onnx_signature
from edge_sdk.loaders.to_onnx import keras_to_onnx, run_torch, source_model, torch_to_onnx
from edge_sdk.models import resolve_input_shapes
from edge_sdk.progress import Progress

MODES = ("fp32", "fp16", "dynamic", "int8")
QUANT_TYPES = ("s8s8", "u8s8")  # activations, weights
CALIBRATION_METHODS = ("MinMax", "Entropy", "Percentile")
# Mean cosine to the source on real data, per mode; fp32 must also match to FP32_ATOL (Optimum's ATOL_FOR_VALIDATION idea).
MIN_COSINE = {"fp32": 0.99999, "fp16": 0.999, "dynamic": 0.98, "int8": 0.9}
FP32_ATOL = 1e-4
# Ops that only move data: they say nothing about the precision of the compute.
LAYOUT_OPS = frozenset({"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Shape", "Gather", "Concat", "Identity", "Constant", "Cast", "Slice"})
QUANT_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"})


@dataclass
class ONNXOptions:
    mode: str = "fp32"
    calibration_samples: int | None = 300
    seed: int = 0
    input_shapes: dict[str, list[int]] | None = None
    validation_samples: int = 100
    per_channel: bool = True
    quant_types: str = "s8s8"
    calibration_method: str = "MinMax"
    exclude_nodes: list[str] = field(default_factory=list)
    exclude_op_types: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"--quant {self.mode!r} is not an ONNX mode; choose one of {', '.join(MODES)}")
        if self.quant_types not in QUANT_TYPES:
            raise UsageError(f"--quant-types {self.quant_types!r} must be one of {', '.join(QUANT_TYPES)} (activations, weights)")
        if self.calibration_method not in CALIBRATION_METHODS:
            raise UsageError(f"--calib-method {self.calibration_method!r} must be one of {', '.join(CALIBRATION_METHODS)}")


def convert(
    model_path: Any,
    output: Path,
    options: ONNXOptions,
    calibration: Dataset | None = None,
    *,
    validation: Dataset | None = None,
    preprocess: PreprocessSpec | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Artifact:
    """Convert `model_path` (a file, a `module:factory` spec or an nn.Module) to `output` (.onnx) with a manifest."""
    progress = progress or Progress(enabled=False)
    output = Path(output)
    check_can_write(output, overwrite, "artifact")
    check_can_write(manifest_path_for(output), overwrite, "manifest")
    if options.mode == "int8" and calibration is None:
        raise UsageError("--quant int8 needs calibration data", fix="pass --calib DATA (.npz, .npy or an image folder)")
    kind, loaded = source_model(model_path)
    started = time.perf_counter()
    progress.message(f"exporting {getattr(loaded, 'description', model_path)} to ONNX ...")
    if kind == "torch":
        float_model = torch_to_onnx(loaded, _torch_shapes(options.input_shapes, str(model_path)))
        exported_inputs = onnx_signature(float_model).inputs
        shapes = [(tensor.name, list(shape)) for tensor, shape in zip(exported_inputs, options.input_shapes.values())]  # type: ignore[union-attr]
    else:
        shapes = resolve_input_shapes(loaded.signature, options.input_shapes, Path(model_path))
        # tf2onnx keeps the Keras input names given in the TensorSpecs, so `shapes` still applies.
        float_model = loaded.model if kind == "onnx" else keras_to_onnx(loaded, shapes)
    binding = InputBinding.bind(calibration, shapes) if calibration else None
    keeps_external_data = kind == "torch" or any("external data" in note for note in getattr(loaded, "notes", []))

    workdir = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=_parent(output)))
    try:
        onnx = require("onnx", "ONNX conversion")
        float_path = workdir / "float.onnx"
        onnx.save_model(float_model, str(float_path))
        staged = workdir / output.name
        data_name = f"{output.name}.data"
        calibration_used = 0
        notes: list[str] = []  # what the quantization had to work around, kept in the manifest
        if options.mode == "fp32":
            if keeps_external_data:
                onnx.save_model(float_model, str(staged), save_as_external_data=True, all_tensors_to_one_file=True, location=data_name, size_threshold=1024)
            else:
                shutil.copyfile(float_path, staged)
        elif options.mode == "fp16":
            from converters.onnx_quantize import resolve_node_names, to_fp16_checked

            to_fp16_checked(float_model, staged, resolve_node_names([float_path], options.exclude_nodes), options.exclude_op_types, notes)
        elif options.mode == "dynamic":
            _quantize_dynamic(float_path, staged, options, notes)
        else:
            calibration_used = _quantize_static(float_path, staged, options, calibration, binding, workdir, progress, notes)  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        data = validation or calibration
        validation_report = _validate(staged, kind, loaded, float_path, data, shapes, options, str(model_path), progress)
        artifact_model = onnx.load(str(staged), load_external_data=False)
        external = [data_name] if (workdir / data_name).exists() else []
        spec = calibration.spec if calibration else (validation.spec if validation else preprocess)
        manifest = _manifest(model_path, kind, loaded, float_model, artifact_model, options, calibration, calibration_used, validation_report, seconds, staged, external, workdir, shapes, spec)
        if options.mode in ("int8", "dynamic"):
            from converters.onnx_quantize import check_result

            check_result(float_path, staged, manifest["integer_op_share"], options.mode, notes)
        manifest["conversion_notes"] = notes
        from edge_sdk.io_signature import annotate_io

        annotate_io(manifest, calibration or validation)  # batch axes, output kinds, state pairs
        for name in external:  # data first: the model file must never point at a missing file
            os.replace(workdir / name, _parent(output) / name)
        os.replace(staged, output)
        write_manifest(output, manifest_from_record(manifest, where=f"manifest of {output}"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return load_artifact(output)


def _parent(output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    return output.parent


def _torch_shapes(overrides: dict[str, list[int]] | None, source: str) -> dict[str, list[int]]:
    if not overrides:
        raise UsageError(f"exporting the PyTorch model {source} needs its example input shape", fix="pass --input-shape 1,1,8,8 (API: input_shapes={'': [1, 1, 8, 8]})")
    return dict(overrides)


def _quant_types(options: ONNXOptions) -> tuple[Any, Any]:
    from onnxruntime.quantization import QuantType

    activation = QuantType.QInt8 if options.quant_types == "s8s8" else QuantType.QUInt8
    return activation, QuantType.QInt8


def _quantize_dynamic(float_path: Path, target: Path, options: ONNXOptions, notes: list[str] | None = None) -> None:
    require("onnxruntime", "ONNX quantization")
    onnx = require("onnx")
    from onnxruntime.quantization import quantize_dynamic

    from converters import onnx_quantize

    notes = notes if notes is not None else []
    model = onnx.load(str(float_path))
    moved = onnx_quantize.constants_to_initializers(model)
    if moved:  # weights held in Constant nodes are invisible to quantize_dynamic
        notes.append(f"moved {moved} Constant node tensor(s) to initializers so that their weights are quantized")
        float_path = float_path.with_name("constants_lifted.onnx")
        onnx.save_model(model, str(float_path))
    options.exclude_nodes = onnx_quantize.resolve_node_names([float_path], options.exclude_nodes)
    _, weight_type = _quant_types(options)
    onnx_quantize.run_quantizer("quantize_dynamic", lambda: quantize_dynamic(
        str(float_path), str(target), per_channel=options.per_channel, weight_type=weight_type, nodes_to_exclude=options.exclude_nodes,
        op_types_to_quantize=_op_types_to_quantize(float_path, options)), fix="try --no-per-channel, or keep the failing nodes in float with --exclude-nodes")


def _op_types_to_quantize(model_path: Path, options: ONNXOptions) -> list[str] | None:
    if not options.exclude_op_types:
        return None
    onnx = require("onnx")
    present = {node.op_type for node in onnx.load(str(model_path), load_external_data=False).graph.node}
    return sorted(present - set(options.exclude_op_types))


def _quantize_static(float_path: Path, target: Path, options: ONNXOptions, calibration: Dataset, binding: InputBinding, workdir: Path, progress: Progress, notes: list[str] | None = None) -> int:
    require("onnxruntime", "ONNX quantization")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static

    from converters import onnx_quantize

    notes = notes if notes is not None else []
    indices = calibration.subset(options.calibration_samples, options.seed)
    indices = list(range(calibration.num_samples)) if indices is None else indices
    # Fail on a mismatching data set before ORT starts (its errors would not name the data file).
    binding.fit(next(iter(calibration.samples(indices))), str(calibration.path))
    prepared = onnx_quantize.prepare_for_static(float_path, workdir, options.per_channel, notes, progress)
    # Node names of the float or the prepared graph (what `edge-sdk debug` reports); tensor names map to their node.
    options.exclude_nodes = onnx_quantize.resolve_node_names([float_path, prepared], options.exclude_nodes)
    activation_type, weight_type = _quant_types(options)
    stride = onnx_quantize.stride_for(len(indices))
    with progress.task("calibrate", len(indices)) as task:

        def fit(sample: Any) -> dict[str, np.ndarray]:
            return {name: array.astype(np.float32) for name, array in binding.fit(sample, str(calibration.path)).items()}

        reader = onnx_quantize.strided_reader(calibration.samples, indices, fit, task)
        onnx_quantize.run_quantizer("quantize_static", lambda: quantize_static(
            str(prepared), str(target), reader, quant_format=QuantFormat.QDQ, per_channel=options.per_channel,
            activation_type=activation_type, weight_type=weight_type, calibrate_method=getattr(CalibrationMethod, options.calibration_method),
            nodes_to_exclude=options.exclude_nodes, op_types_to_quantize=_op_types_to_quantize(prepared, options),
            # ORT 1.32's per-channel int32-bias weight-scale adjustment indexes the bias as 1-D and crashes on
            # the (C,1,1) bias that quant_pre_process fuses from a lifted opset-1 Conv + Add (zoo MNIST).
            # CalibStridedMinMax: calibrate `stride` samples at a time (histograms merge between strides), so
            # Entropy / Percentile never hold every activation of every sample at once.
            extra_options={"QDQDisableWeightAdjustForInt32Bias": True, "CalibStridedMinMax": stride},
        ), fix="try --no-per-channel, --calib-method MinMax, or keep the failing nodes in float with --exclude-nodes / --exclude-op-types")
    return len(indices)


def calibration_reader(dataset: Dataset, binding: InputBinding, indices: list[int] | None, task: Any = None) -> Any:
    """An ORT CalibrationDataReader that streams `dataset` (get_next() until None; never holds it all)."""
    from onnxruntime.quantization import CalibrationDataReader

    class DatasetCalibrationReader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._samples = dataset.samples(indices)

        def get_next(self) -> dict[str, np.ndarray] | None:
            sample = next(self._samples, None)
            if sample is None:
                return None
            if task is not None:
                task.advance()
            return {name: array.astype(np.float32) for name, array in binding.fit(sample, str(dataset.path)).items()}

        def rewind(self) -> None:
            self._samples = dataset.samples(indices)

    return DatasetCalibrationReader()


def quantized_node_share(model: Any) -> float:
    """Share of compute nodes that run on quantized data (QDQ-fed, or integer ops from dynamic quantization)."""
    dequantized = {out for node in model.graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    compute = [node for node in model.graph.node if node.op_type not in LAYOUT_OPS | QUANT_OPS]
    if not compute:
        return 0.0
    quantized = [n for n in compute if n.op_type.startswith("QLinear") or n.op_type.endswith("Integer") or (n.input and n.input[0] in dequantized)]
    return len(quantized) / len(compute)


def _validate(artifact: Path, kind: str, loaded: Any, float_path: Path, data: Dataset | None, shapes: list[tuple[str, list[int]]], options: ONNXOptions, source: str, progress: Progress) -> dict[str, Any]:
    """Run the artifact and its source (Keras, PyTorch, or the float ONNX) on the same real samples (STYLE 14)."""
    if data is None:
        return {"status": "skipped", "reason": "no data given (pass --calib or --validate-data)"}
    from edge_sdk.bench import per_sample_rows
    from targets.runners.base import RunnerOptions
    from targets.runners.onnxruntime import OnnxRuntimeRunner

    indices = data.subset(options.validation_samples, options.seed + 1)
    binding = InputBinding.bind(data, shapes)
    reference = _source_function(kind, loaded, float_path, [name for name, _ in shapes])
    artifact_outputs, source_outputs = [], []
    # Every output, by name (the source's in the same order), for the per-output figures (edge_sdk.fidelity).
    artifact_all: dict[str, list[np.ndarray]] = {}
    source_all: dict[str, list[np.ndarray]] = {}
    with OnnxRuntimeRunner(artifact, RunnerOptions(threads=1)) as runner:
        for sample in data.samples(indices):
            fitted = binding.fit(sample, str(data.path))
            produced = runner.infer(fitted)
            expected = [np.asarray(value) for value in reference([fitted[name] for name, _ in shapes])]
            artifact_outputs.append(produced[runner.outputs[0].name][0])
            source_outputs.append(expected[0][0])
            for spec, value in zip(runner.outputs, expected):
                artifact_all.setdefault(spec.name, []).extend(per_sample_rows(produced[spec.name], 1))
                source_all.setdefault(spec.name, []).extend(per_sample_rows(value, 1))
    from edge_sdk.fidelity import compare_outputs, primary_fidelity, weak_outputs

    # Over a single value (a probability, a score) top-1 and cosine are always perfect: left out, not reported.
    figures = primary_fidelity(np.stack(artifact_outputs), np.stack(source_outputs))
    figures = {key: (None if value is None or not np.isfinite(value) else value) for key, value in figures.items()}
    cosine = figures["cosine_mean"] if figures["cosine_mean"] is not None else 1.0
    within_atol = options.mode != "fp32" or (figures["max_abs_error"] or 0.0) <= FP32_ATOL
    report = {"status": "passed" if cosine >= MIN_COSINE[options.mode] and within_atol else "failed", "samples": len(artifact_outputs), "against": kind, "min_cosine": MIN_COSINE[options.mode], **figures}
    if options.mode == "fp32":
        report["atol"] = FP32_ATOL
    try:
        report["outputs"] = compare_outputs({name: np.stack(rows) for name, rows in artifact_all.items()},
                                            {name: np.stack(rows) for name, rows in source_all.items()})
    except (ValueError, EdgeSdkError) as error:  # outputs whose shapes differ per sample cannot be stacked
        report["outputs"] = {"error": str(error)}
    weak = weak_outputs(report["outputs"]) if "error" not in report["outputs"] else []
    if weak:
        import sys

        report["weak_outputs"] = weak
        for line in weak:
            print(f"warning: validation of the {options.mode} model against {source}: {line}", file=sys.stderr)
    if report["status"] == "failed":
        raise ConversionError(
            f"the {options.mode} ONNX model does not behave like {source}: mean cosine {cosine:.6f} (needs {MIN_COSINE[options.mode]}), "
            f"max abs error {figures['max_abs_error']:.3g} on {len(artifact_outputs)} real samples (SQNR {figures['sqnr_db']} dB)",
            fix="check the calibration data matches the evaluation preprocessing; exclude sensitive nodes with --exclude-nodes",
        )
    return report


def _source_function(kind: str, loaded: Any, float_path: Path, names: list[str]) -> Any:
    """A function from the input arrays (in signature order) to the source model's float outputs."""
    if kind == "torch":
        return lambda arrays: run_torch(loaded, arrays)
    if kind == "keras" and loaded.framework == "savedmodel":
        function = loaded.model.signatures["serving_default"]
        input_names, output_names = [t.name for t in loaded.signature.inputs], [t.name for t in loaded.signature.outputs]
        return lambda arrays: [np.asarray(function(**dict(zip(input_names, arrays)))[name]) for name in output_names]
    if kind == "keras":

        def call_keras(arrays: list[np.ndarray]) -> list[np.ndarray]:
            result = loaded.model(arrays[0] if len(arrays) == 1 else arrays, training=False)
            return [np.asarray(value) for value in (result if isinstance(result, (list, tuple)) else [result])]

        return call_keras
    ort = require("onnxruntime", "validating ONNX conversions")
    from targets.runners.onnxruntime import _ORT_TYPES

    session = ort.InferenceSession(str(float_path), providers=["CPUExecutionProvider"])
    # Samples arrive as float32; integer inputs (silero-vad's sample rate `sr`) take the model's own type.
    dtypes = {node.name: _ORT_TYPES.get(node.type, np.float32) for node in session.get_inputs()}
    return lambda arrays: session.run(None, {name: np.asarray(array, dtype=dtypes.get(name, np.float32)) for name, array in zip(names, arrays)})


def _manifest(source: Any, kind: str, loaded: Any, float_model: Any, artifact_model: Any, options: ONNXOptions, calibration: Dataset | None, calibration_used: int, validation: dict[str, Any], seconds: float, artifact_file: Path, external: list[str], workdir: Path, shapes: list[tuple[str, list[int]]], spec: PreprocessSpec | None) -> dict[str, Any]:
    source_path = Path(str(source)) if isinstance(source, (str, Path)) and Path(str(source)).exists() else None
    op_counts: dict[str, int] = {}
    for node in artifact_model.graph.node:
        op_counts[node.op_type] = op_counts.get(node.op_type, 0) + 1
    quantized = options.mode in ("int8", "dynamic")
    return {
        "format": "onnx",
        "mode": options.mode,
        "options": asdict(options),
        "source": {
            "path": str(source_path) if source_path else (str(source) if isinstance(source, str) else type(source).__name__),
            "sha256": sha256_of(source_path) if source_path else None,
            "kind": kind if kind != "keras" else loaded.kind,
            "framework": getattr(loaded, "framework", None) or "torch",
            "opset": default_opset(float_model),
            "parameters": getattr(loaded, "parameter_count", 0),
            "notes": getattr(loaded, "notes", []),
        },
        "signature": onnx_signature(artifact_model).to_dict(),
        "input_shapes": {name: shape for name, shape in shapes},
        "opset": default_opset(artifact_model),
        "preprocess": spec.to_dict() if spec else None,
        "quantization": {
            "format": "QDQ" if options.mode == "int8" else ("dynamic (integer ops)" if options.mode == "dynamic" else None),
            "per_channel": options.per_channel, "activation_weight_types": options.quant_types,
            "calibration_method": options.calibration_method if options.mode == "int8" else None,
            "exclude_nodes": options.exclude_nodes, "exclude_op_types": options.exclude_op_types,
        } if quantized else None,
        "calibration": {"path": str(calibration.path), "sha256": sha256_of(calibration.path), "samples": calibration_used, "seed": options.seed, "method": options.calibration_method} if calibration and calibration_used else None,
        # The float graph holds the source's weights for every source kind (Keras, torch, ONNX).
        "weights": weight_statistics_of_model(float_model, workdir),
        "ops": dict(sorted(op_counts.items())),
        "op_count": len(artifact_model.graph.node),
        "integer_op_share": quantized_node_share(artifact_model),
        "external_data": [{"path": name, "size_bytes": (workdir / name).stat().st_size, "sha256": sha256_of(workdir / name)} for name in external],
        "size_bytes": artifact_file.stat().st_size + sum((workdir / name).stat().st_size for name in external),
        "gzip_size_bytes": gzip_size_of(artifact_file),
        "sha256": sha256_of(artifact_file),
        "conversion_seconds": round(seconds, 3),
        "validation": validation,
        "toolchain": package_versions(("onnx", "onnxruntime", "tf2onnx", "onnxconverter-common", "onnxscript", "torch", "tensorflow", "keras", "numpy")),
    }


def options_for(**settings: Any) -> ONNXOptions:
    """ONNXOptions from the API's generic settings (TFLite-only settings refused clearly)."""
    if settings.pop("allow_float_fallback", False):
        raise UsageError("--allow-float-fallback is a TFLite setting; for ONNX exclude nodes or op types from quantization instead")
    return ONNXOptions(**settings)
