"""Keras / SavedModel / PyTorch / ONNX -> ONNX in fp32, fp16, dynamic int8 and static int8 (QDQ).

Sources come in through edge_sdk.loaders (opset lifting, tf2onnx, torch.onnx.export). Static
int8 runs ORT's `quant_pre_process`, then `quantize_static` in QDQ format with a calibration
reader that streams the Dataset one sample at a time. The template (converters/base.py) validates
every artifact against its source (Keras, the PyTorch module, or the float ONNX model) on real data.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from converters.base import Builder, Conversion
from converters.input_shapes import check_loads_in_onnxruntime, fix_onnx_input_dims, fixed_record, set_output_dims, user_fixed_shapes
from converters.options import ONNXOptions, OnnxOptions
from edge_sdk._lazy import require
from edge_sdk.compression.weights import weight_statistics_of_model
from edge_sdk.data import InputBinding
from edge_sdk.environment import package_versions
from edge_sdk.errors import UsageError
from edge_sdk.fileio import gzip_size_of, sha256_of
from edge_sdk.formats import DYNAMIC, FORMATS, FP16, FP32, INT8
from edge_sdk.inspection import quantized_node_share
from edge_sdk.loaders.onnx_intake import default_opset, onnx_signature
from edge_sdk.loaders.to_onnx import keras_to_onnx, run_torch, source_model, torch_to_onnx
from edge_sdk.models import resolve_input_shapes

__all__ = ["BUILDER", "ONNXOptions", "OnnxOptions", "quantized_node_share"]

SPEC = FORMATS["onnx"]


class OnnxBuilder(Builder):
    def load(self, conversion: Conversion) -> Any:
        kind, loaded = source_model(conversion.source)
        conversion.details["kind"] = kind
        if kind != "torch":
            conversion.shapes = resolve_input_shapes(loaded.signature, conversion.data.input_shapes, conversion.source)
        return loaded

    def build(self, conversion: Conversion) -> None:
        options, loaded, kind, staging = conversion.options, conversion.loaded, conversion.details["kind"], conversion.staging
        conversion.progress.message(f"exporting {getattr(loaded, 'description', conversion.source_label)} to ONNX ...")
        if kind == "torch":
            input_shapes = _torch_shapes(conversion.data.input_shapes, conversion.source_label)
            float_model = torch_to_onnx(loaded, input_shapes)
            exported_inputs = onnx_signature(float_model).inputs
            conversion.shapes = [(tensor.name, list(shape)) for tensor, shape in zip(exported_inputs, input_shapes.values())]
        else:
            # tf2onnx keeps the Keras input names given in the TensorSpecs, so `shapes` still applies.
            float_model = loaded.model if kind == "onnx" else keras_to_onnx(loaded, conversion.shapes)
            fixed = user_fixed_shapes(conversion.shapes, conversion.data.input_shapes)
            if fixed:  # the artifact keeps the dims --input-shape gives, in every mode (all start from this graph)
                float_model = fix_onnx_input_dims(float_model, fixed, conversion.source_label)
                conversion.details["input_shapes_fixed"] = fixed_record({t.name: t.shape for t in loaded.signature.inputs}, fixed)
        keeps_external_data = kind == "torch" or any("external data" in note for note in getattr(loaded, "notes", []))
        onnx = require("onnx", "ONNX conversion")
        float_path = staging / "float.onnx"
        onnx.save_model(float_model, str(float_path))
        if conversion.details.get("input_shapes_fixed") and set_output_dims(float_model, check_loads_in_onnxruntime(float_path, conversion.source_label)):
            onnx.save_model(float_model, str(float_path))
        staged, data_name = conversion.staged, f"{conversion.output.name}.data"
        calibration_used = 0
        notes: list[str] = []  # what the quantization had to work around, kept in the manifest
        if options.mode == FP32:
            if keeps_external_data:
                onnx.save_model(float_model, str(staged), save_as_external_data=True, all_tensors_to_one_file=True, location=data_name, size_threshold=1024)
            else:
                shutil.copyfile(float_path, staged)
        elif options.mode == FP16:
            from converters.onnx_quantize import resolve_node_names, to_fp16_checked

            options.exclude_nodes = resolve_node_names([float_path], options.exclude_nodes)  # the manifest records node names
            to_fp16_checked(float_model, staged, options.exclude_nodes, options.exclude_op_types, notes)
        elif options.mode == DYNAMIC:
            _quantize_dynamic(float_path, staged, options, notes)
        else:
            calibration_used = _quantize_static(float_path, staged, options, conversion, notes)
        conversion.companions = [data_name] if (staging / data_name).exists() else []
        conversion.details.update(float_model=float_model, float_path=float_path, calibration_used=calibration_used, notes=notes)

    def artifact_runner(self, conversion: Conversion) -> Any:
        from targets.runners.base import RunnerOptions
        from targets.runners.onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(conversion.staged, RunnerOptions(threads=1))

    def source_outputs(self, conversion: Conversion, samples: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
        names = [name for name, _ in conversion.shapes]
        reference = _source_function(conversion.details["kind"], conversion.loaded, conversion.details["float_path"], names)
        rows = [[np.asarray(value) for value in reference([sample[name] for name in names])] for sample in samples]
        return [np.concatenate([row[index] for row in rows]) for index in range(len(rows[0]))]

    def validation_extra(self, conversion: Conversion) -> dict[str, Any]:
        return {"against": conversion.details["kind"]}

    def conversion_fix(self, conversion: Conversion) -> str:
        return "check the calibration data matches the evaluation preprocessing; exclude sensitive nodes with --exclude-nodes"

    def manifest(self, conversion: Conversion, validation: dict[str, Any]) -> dict[str, Any]:
        record = _manifest(conversion, validation)
        notes = conversion.details["notes"]
        if conversion.mode in (INT8, DYNAMIC):  # quantized nothing, or grew: flagged (converters.onnx_quantize)
            from converters.onnx_quantize import check_result

            check_result(conversion.details["float_path"], conversion.staged, record["integer_op_share"], conversion.mode, notes)
        record["conversion_notes"] = notes + conversion.details.get("degenerate_data", [])
        if conversion.details.get("input_shapes_fixed"):
            record["input_shapes_fixed"] = conversion.details["input_shapes_fixed"]
        from edge_sdk.io_signature import annotate_io

        annotate_io(record, conversion.calibration or conversion.validation)  # batch axes, output kinds, state pairs
        return record


BUILDER = OnnxBuilder()


def _torch_shapes(overrides: dict[str, list[int]] | None, source: str) -> dict[str, list[int]]:
    if not overrides:
        raise UsageError(f"exporting the PyTorch model {source} needs its example input shape", fix="pass --input-shape 1,1,8,8 (API: input_shapes={'': [1, 1, 8, 8]})")
    return dict(overrides)


def _quant_types(options: OnnxOptions) -> tuple[Any, Any]:
    from onnxruntime.quantization import QuantType

    activation = QuantType.QInt8 if options.quant_types == "s8s8" else QuantType.QUInt8
    return activation, QuantType.QInt8


def _quantize_dynamic(float_path: Path, target: Path, options: OnnxOptions, notes: list[str] | None = None) -> None:
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


def _op_types_to_quantize(model_path: Path, options: OnnxOptions) -> list[str] | None:
    if not options.exclude_op_types:
        return None
    onnx = require("onnx")
    present = {node.op_type for node in onnx.load(str(model_path), load_external_data=False).graph.node}
    return sorted(present - set(options.exclude_op_types))


def _quantize_static(float_path: Path, target: Path, options: OnnxOptions, conversion: Conversion, notes: list[str] | None = None) -> int:
    require("onnxruntime", "ONNX quantization")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static

    from converters import onnx_quantize

    notes = notes if notes is not None else []
    calibration, progress, workdir = conversion.calibration, conversion.progress, conversion.staging
    if calibration is None:  # Builder.check refuses this first
        raise UsageError(f"--quant {options.mode} needs calibration data", fix="pass --calib DATA")
    binding = InputBinding.bind(calibration, conversion.shapes)
    indices = calibration.subset(conversion.data.calibration_samples, conversion.data.seed)
    indices = list(range(calibration.num_samples)) if indices is None else indices
    # Fail on a mismatching data set before ORT starts (its errors would not name the data file).
    binding.fit(next(iter(calibration.samples(indices))), str(calibration.path))
    # Constant weights as initializers, opset lifted, quant_pre_process where it works (its failure is noted and
    # the model quantized without it); all inside the staging folder, the working directory of every step.
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


def _manifest(conversion: Conversion, validation: dict[str, Any]) -> dict[str, Any]:
    options, loaded, kind, source, calibration = conversion.options, conversion.loaded, conversion.details["kind"], conversion.source, conversion.calibration
    float_model, artifact_file, workdir, external = conversion.details["float_model"], conversion.staged, conversion.staging, conversion.companions
    artifact_model = require("onnx").load(str(artifact_file), load_external_data=False)
    source_path = Path(str(source)) if isinstance(source, (str, Path)) and Path(str(source)).exists() else None
    op_counts: dict[str, int] = {}
    for node in artifact_model.graph.node:
        op_counts[node.op_type] = op_counts.get(node.op_type, 0) + 1
    quantized = options.mode in (INT8, DYNAMIC)
    calibration_used = conversion.details["calibration_used"]
    spec = conversion.spec
    return {
        "format": SPEC.name,
        "mode": options.mode,
        "options": {**asdict(options), **conversion.data.record()},
        "source": {
            "path": str(source_path) if source_path else (str(source) if isinstance(source, str) or hasattr(source, "factory") else type(source).__name__),
            "sha256": sha256_of(source_path) if source_path else None,
            "kind": kind if kind != "keras" else loaded.kind,
            "framework": getattr(loaded, "framework", None) or "torch",
            "opset": default_opset(float_model),
            "parameters": getattr(loaded, "parameter_count", 0),
            "notes": getattr(loaded, "notes", []),
        },
        "signature": onnx_signature(artifact_model).to_dict(),
        "input_shapes": {name: shape for name, shape in conversion.shapes},
        "opset": default_opset(artifact_model),
        "preprocess": spec.to_dict() if spec else None,
        "quantization": {
            "format": "QDQ" if options.mode == INT8 else "dynamic (integer ops)",
            "per_channel": options.per_channel, "activation_weight_types": options.quant_types,
            "calibration_method": options.calibration_method if options.mode == INT8 else None,
            "exclude_nodes": options.exclude_nodes, "exclude_op_types": options.exclude_op_types,
        } if quantized else None,
        "calibration": {"path": str(calibration.path), "sha256": sha256_of(calibration.path), "samples": calibration_used, "seed": conversion.data.seed, "method": options.calibration_method} if calibration and calibration_used else None,
        # The float graph holds the source's weights for every source kind (Keras, torch, ONNX).
        "weights": weight_statistics_of_model(float_model, workdir),
        "ops": dict(sorted(op_counts.items())),
        "op_count": len(artifact_model.graph.node),
        "integer_op_share": quantized_node_share(artifact_model),
        "external_data": [{"path": name, "size_bytes": (workdir / name).stat().st_size, "sha256": sha256_of(workdir / name)} for name in external],
        "size_bytes": artifact_file.stat().st_size + sum((workdir / name).stat().st_size for name in external),
        "gzip_size_bytes": gzip_size_of(artifact_file),
        "sha256": sha256_of(artifact_file),
        "conversion_seconds": round(conversion.seconds, 3),
        "validation": validation,
        "toolchain": package_versions(("onnx", "onnxruntime", "tf2onnx", "onnxconverter-common", "onnxscript", "torch", "tensorflow", "keras", "numpy")),
    }
