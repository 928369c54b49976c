"""Keras 3 / tf_keras / SavedModel -> TFLite in fp32, fp16, dynamic-range, full int8 and int16x8.

Conversion paths that work with Keras 3 (DEVELOPERS.md): `TFLiteConverter.from_keras_model` for
in-memory Keras models and `from_saved_model` for SavedModel folders exported with
`model.export(dir)`. `tf.saved_model.save(keras_model)` folders convert *without an error* to
a model whose weights stay in resource variables: `check_weights_present` refuses those, and
every conversion is validated against its source on real data when data is given (converters/base.py).
Selective quantization (layers kept in float, chosen by `edge-sdk debug --max-drop`) is a build option here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from converters.base import Builder, Conversion
from converters.input_shapes import fixed_record, user_fixed_shapes
from converters.options import DataSettings, TFLiteOptions
from edge_sdk._lazy import require
from edge_sdk.compression.weights import source_weight_statistics
from edge_sdk.data import Dataset, InputBinding
from edge_sdk.environment import package_versions
from edge_sdk.errors import ConversionError, UsageError
from edge_sdk.fileio import gzip_size_of, sha256_of
from edge_sdk.formats import DYNAMIC, FORMATS, FP16, FP32, INT8
from edge_sdk.inspection import analyze_tflite
from edge_sdk.models import LoadedModel, load_model, resolve_input_shapes
from edge_sdk.progress import Progress

__all__ = ["BUILDER", "TFLiteOptions", "check_weights_present", "quantization_converter", "selective_quantize"]

SPEC = FORMATS["tflite"]


class TFLiteBuilder(Builder):
    def for_source(self, source: Any) -> Builder:
        """PyTorch and ONNX sources are exported by litert-torch (converters.tflite_torch, issue 14)."""
        from converters import tflite_torch

        return tflite_torch.BUILDER if tflite_torch.handles(source) else self

    def check(self, conversion: Conversion) -> None:
        pass  # a quantization-aware int8 model needs no calibration data: checked once the source is loaded

    def load(self, conversion: Conversion) -> LoadedModel:
        if conversion.options.nhwc_input or conversion.options.torch_quantizer:
            raise UsageError("--nhwc-input and --torch-quantizer apply to PyTorch and ONNX sources, not Keras or SavedModel")
        loaded = load_model(conversion.source)
        conversion.shapes = resolve_input_shapes(loaded.signature, conversion.data.input_shapes, conversion.source)
        if conversion.format.needs_calibration(conversion.mode) and conversion.calibration is None and not _learned_ranges(conversion.options, loaded):
            raise UsageError(f"--quant {conversion.mode} needs calibration data", fix="pass --calib DATA (.npz, .npy or an image folder)")
        return loaded

    def build(self, conversion: Conversion) -> None:
        options, loaded = conversion.options, conversion.loaded
        binding = InputBinding.bind(conversion.calibration, conversion.shapes) if conversion.calibration else None
        tf = require("tensorflow", "TFLite conversion")
        fixed = user_fixed_shapes(conversion.shapes, conversion.data.input_shapes)
        converter = make_converter(tf, loaded, conversion.shapes, fixed=bool(fixed))
        if fixed:
            conversion.details["input_shapes_fixed"] = fixed_record({t.name: t.shape for t in loaded.signature.inputs}, fixed)
        conversion.details["calibration_used"] = configure(tf, converter, options, loaded, conversion.calibration, binding, conversion.data, conversion.progress)
        conversion.progress.message(f"converting {conversion.source} to TFLite {options.mode} ...")
        try:
            if options.float_nodes or options.float_ops:
                # The manifest records the op names the given names resolved to.
                flatbuffer, options.float_nodes, options.float_ops = selective_quantize(tf, converter, options.float_nodes, options.float_ops)
            else:
                flatbuffer = converter.convert()
        except (ValueError, RuntimeError, TypeError, tf.errors.OpError) as error:
            raise ConversionError(f"TFLite conversion of {conversion.source} ({options.mode}) failed: {error}", fix=_conversion_fix(options)) from error
        except Exception as error:  # noqa: BLE001 - TF's ConverterError derives from Exception directly
            if type(error).__name__ != "ConverterError":
                raise
            raise ConversionError(f"TFLite conversion of {conversion.source} ({options.mode}) failed: {error}", fix=_conversion_fix(options)) from error
        conversion.details["analysis"] = analysis = analyze_tflite(flatbuffer, str(conversion.output))
        check_weights_present(analysis, loaded, conversion.source)
        if _learned_ranges(options, loaded) and analysis["integer_op_share"] < 1.0 and not options.allow_float_fallback:
            raise ConversionError(
                f"the quantization-aware model {conversion.source} did not convert to full int8 ({100 * analysis['integer_op_share']:.0f}% of compute ops in integer)",
                fix="quantize every layer with tfmot (quantize_model), or pass --allow-float-fallback",
            )
        conversion.staged.write_bytes(flatbuffer)

    def artifact_runner(self, conversion: Conversion) -> Any:
        from targets.runners.litert import LiteRTRunner

        return LiteRTRunner(conversion.staged)

    def source_outputs(self, conversion: Conversion, samples: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
        from targets.runners.reference import ReferenceRunner

        # The source model runs the (bounded) validation subset as one batch where it can.
        reference = ReferenceRunner.from_loaded(conversion.loaded)
        batches = [samples] if reference.supports_batching else [[sample] for sample in samples]
        per_output: list[list[np.ndarray]] = []
        for batch in batches:
            stacked = {name: np.concatenate([sample[name] for sample in batch]) for name in batch[0]}
            outputs = list(reference.infer(stacked).values())
            per_output = per_output or [[] for _ in outputs]
            for index, value in enumerate(outputs):
                per_output[index].append(np.asarray(value))
        return [np.concatenate(parts) for parts in per_output]

    def conversion_fix(self, conversion: Conversion) -> str:
        return "check the calibration data matches the evaluation preprocessing (edge-sdk inspect shows the spec)"

    def manifest(self, conversion: Conversion, validation: dict[str, Any]) -> dict[str, Any]:
        record = _manifest(conversion, conversion.details["analysis"], conversion.details["calibration_used"], validation)
        if conversion.details.get("input_shapes_fixed"):
            record["input_shapes_fixed"] = conversion.details["input_shapes_fixed"]
        return record


BUILDER = TFLiteBuilder()


def _learned_ranges(options: TFLiteOptions, loaded: LoadedModel) -> bool:
    """A quantization-aware model converts to int8 with the ranges it learned, without calibration (issue #6)."""
    return options.mode == INT8 and loaded.quantization_aware


def make_converter(tf: Any, loaded: LoadedModel, shapes: list[tuple[str, list[int]]], fixed: bool = False) -> Any:
    """A TFLiteConverter for the loaded source (from_saved_model, from_keras_model, or a traced concrete function).

    `fixed` (the user gave --input-shape): the model is traced at `shapes`, so the artifact's inputs have those dims."""
    declared = [[d for d in t.shape] for t in loaded.signature.inputs]
    needs_concrete_shapes = fixed or any(None in dims[1:] for dims in declared)
    if loaded.framework == "savedmodel":
        if not needs_concrete_shapes:
            return tf.lite.TFLiteConverter.from_saved_model(str(loaded.path), signature_keys=["serving_default"])
        if not fixed:
            raise UsageError(f"SavedModel {loaded.path} has dynamic input dimensions",
                             fix="give them with --input-shape NAME:DIMS, or re-export it with fixed shapes")
        signature = loaded.model.signatures["serving_default"]
        names = [name for name, _ in shapes]
        specs = [tf.TensorSpec(shape, tf.float32, name=name) for name, shape in shapes]
        return _frozen_converter(tf, lambda *args: signature(**dict(zip(names, args))), specs)
    if needs_concrete_shapes:
        # Concrete shapes (a user-given --input-shape): trace the model once at them.
        specs = [tf.TensorSpec(shape, tf.float32, name=name) for name, shape in shapes]
        return _frozen_converter(tf, lambda *args: loaded.model(list(args) if len(args) > 1 else args[0], training=False), specs)
    return tf.lite.TFLiteConverter.from_keras_model(loaded.model)


def _frozen_converter(tf: Any, call: Any, specs: list[Any]) -> Any:
    """A converter for `call` traced at `specs`, its variables frozen to constants first: from_concrete_functions
    on a Keras 3 model keeps the weights in resource variables (VAR_HANDLE / READ_VARIABLE, no weights in the file)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(tf.function(call).get_concrete_function(*specs))
    return tf.lite.TFLiteConverter.from_concrete_functions([frozen])


def configure(tf: Any, converter: Any, options: TFLiteOptions, loaded: LoadedModel, calibration: Dataset | None, binding: InputBinding | None, data: DataSettings, progress: Progress) -> int:
    """Set the converter up for the mode; returns how many calibration samples will be used (a subset drawn with
    `data.calibration_samples` and `data.seed`)."""
    mode = options.mode
    if mode == FP32:
        return 0
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == FP16:
        converter.target_spec.supported_types = [tf.float16]
        return 0
    if mode == DYNAMIC:
        return 0
    if _learned_ranges(options, loaded):
        # A QAT model carries its ranges in FakeQuant ops: convert with those, never calibrate (issue #6).
        # TF 2.21 checks for a representative dataset *before* it looks at the graph whenever supported_ops is
        # TFLITE_BUILTINS_INT8 (QuantizationMode built with graph_def=None in _save_conversion_params_metric), and
        # with a representative dataset it re-calibrates QAT graphs. With supported_ops left at its default, the
        # later check sees the FakeQuant ops and converts to integer kernels; `convert` then requires 100% integer.
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        return 0
    indices = calibration.subset(data.calibration_samples, data.seed) if calibration else None
    count = 0
    if calibration is not None and binding is not None:
        count = calibration.num_samples if indices is None else len(indices)
        converter.representative_dataset = _representative_dataset(calibration, binding, indices, count, progress)
    if mode == INT8:
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if options.allow_float_fallback:
            ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
        converter.target_spec.supported_ops = ops
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    else:  # int16x8: int16 activations, int8 weights; float I/O
        converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return count


def _representative_dataset(calibration: Dataset, binding: InputBinding, indices: list[int] | None, count: int, progress: Progress) -> Any:
    def generate() -> Iterator[list[np.ndarray]]:
        with progress.task("calibrate", count) as task:
            for sample in calibration.samples(indices):
                fitted = binding.fit(sample, str(calibration.path))
                yield [fitted[name].astype(np.float32) for name, _ in binding.model_inputs]
                task.advance()

    return generate


def check_weights_present(analysis: dict[str, Any], loaded: LoadedModel, source: Path) -> None:
    """Refuse a converted model whose weights did not make it into the file."""
    weightless = loaded.parameter_count > 0 and analysis["weight_bytes"] < 0.5 * loaded.parameter_count
    if analysis["variable_ops"] or weightless:
        raise ConversionError(
            f"the TFLite converter produced a model without its weights from {source} "
            f"({analysis['weight_bytes']} weight bytes for {loaded.parameter_count} parameters; "
            f"variable ops: {', '.join(analysis['variable_ops']) or 'none'})",
            fix="convert the .keras file itself, or a folder written by model.export(dir) - not tf.saved_model.save(model)",
        )


def _manifest(conversion: Conversion, analysis: dict[str, Any], calibration_used: int, validation: dict[str, Any]) -> dict[str, Any]:
    options, loaded, source, calibration, artifact_file = conversion.options, conversion.loaded, conversion.source, conversion.calibration, conversion.staged
    spec = conversion.spec
    return {
        "format": SPEC.name,
        "mode": options.mode,
        "options": {**asdict(options), **conversion.data.record()},
        "source": {"path": str(source), "sha256": sha256_of(source), "kind": loaded.kind, "framework": loaded.framework, "parameters": loaded.parameter_count, "notes": loaded.notes, "quantization_aware": loaded.quantization_aware},
        "signature": loaded.signature.to_dict(),
        "input_shapes": {name: shape for name, shape in conversion.shapes},
        "io": analysis["io"],
        "preprocess": spec.to_dict() if spec else None,
        "calibration": {"path": str(calibration.path), "sha256": sha256_of(calibration.path), "samples": calibration_used, "seed": conversion.data.seed} if calibration and calibration_used else None,
        "quantization_ranges": _quantization_ranges(options, loaded, calibration_used),
        "weights": source_weight_statistics(loaded),
        "ops": analysis["ops"],
        "op_count": analysis["op_count"],
        "integer_op_share": analysis["integer_op_share"],
        "weight_bytes": analysis["weight_bytes"],
        "size_bytes": artifact_file.stat().st_size,
        "gzip_size_bytes": gzip_size_of(artifact_file),
        "sha256": sha256_of(artifact_file),
        "conversion_seconds": round(conversion.seconds, 3),
        "validation": validation,
        "toolchain": package_versions(("tensorflow", "keras", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "numpy")),
    }


def _quantization_ranges(options: TFLiteOptions, loaded: LoadedModel, calibration_used: int) -> str | None:
    if not SPEC.needs_calibration(options.mode):
        return None
    return "learned (quantization-aware training)" if _learned_ranges(options, loaded) else f"calibrated on {calibration_used} samples"


def _conversion_fix(options: TFLiteOptions) -> str:
    if options.mode == INT8 and not options.allow_float_fallback:
        return "an op without an int8 kernel stops full-integer conversion; pass --allow-float-fallback to keep it in float"
    return "check the model converts with tf.lite.TFLiteConverter; see the message above"


def selective_quantize(tf: Any, converter: Any, float_nodes: list[str], float_ops: list[str]) -> tuple[bytes, list[str], list[str]]:
    """Quantize with the given layers and op types kept in float; float model I/O. Returns the model, the op names
    `float_nodes` resolved to and the op types (`resolve_float_nodes`, `_check_op_types`: checked against the
    calibrated model's ops, unknown names refused with exit 2 before anything is quantized).

    What `QuantizationDebugger.get_nondebug_quantized_model()` does, without building the debugger first: its
    constructor refuses a model whose denylist leaves no NumericVerify op ("not in debug mode").
    """
    from tensorflow.lite.python import convert as tflite_convert

    calibrated = calibrate_only(converter)
    nodes = resolve_float_nodes(op_names(calibrated), float_nodes)
    ops = _check_op_types(calibrated, float_ops)
    return bytes(tflite_convert.mlir_quantize(
        calibrated, disable_per_channel=converter._experimental_disable_per_channel, fully_quantize=False,
        enable_numeric_verify=False, denylisted_ops=ops or None, denylisted_nodes=nodes or None,
    )), nodes, ops


def _check_op_types(flatbuffer: bytes, float_ops: list[str]) -> list[str]:
    """`--exclude-op-types` as the model's TFLite op types (FULLY_CONNECTED; any case): the quantizer silently ignores
    a name it does not know (measured: 'tfl.fully_connected' kept nothing in float), so unknown ones exit 2."""
    import difflib

    present = sorted(set(analyze_tflite(flatbuffer)["ops"]))
    checked = []
    for name in float_ops:
        if name.upper() not in present:
            close = difflib.get_close_matches(name.upper(), present, n=3)
            raise UsageError(f"--exclude-op-types {name!r} is not an op type of the model (its ops: {', '.join(present)})",
                             fix=f"did you mean {', '.join(close)}?" if close else "use the op types `edge-sdk inspect` lists")
        checked.append(name.upper())
    return checked


def calibrate_only(converter: Any) -> bytes:
    """The calibrated float model (ranges recorded, nothing quantized): what mlir_quantize takes."""
    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True  # calibrate only; mlir_quantize applies the denylists
    return bytes(converter.convert())


def op_names(flatbuffer: bytes) -> list[str]:
    """Every op of the main subgraph by name. TFLite ops have no names of their own: the converter names an op by
    its (first) output tensor, which is what the quantizer's `denylisted_nodes` and the debugger use."""
    schema = require("ai_edge_litert.schema_py_generated", "reading .tflite files")
    subgraph = schema.Model.GetRootAs(flatbuffer, 0).Subgraphs(0)
    names = []
    for index in range(subgraph.OperatorsLength()):
        operator = subgraph.Operators(index)
        if operator.OutputsLength() and operator.Outputs(0) >= 0:
            names.append(subgraph.Tensors(operator.Outputs(0)).Name().decode("utf-8", "replace"))
    return names


def resolve_float_nodes(known: list[str], names: list[str]) -> list[str]:
    """`--exclude-nodes` names as op names (`op_names`): an op name, or one of the ';'-joined names of a fused op,
    stays (as the op); anything else is refused (exit 2) with the nearest op names, never silently ignored.

    Keras layer names are refused too: the op names come from the name scopes TF traced the model in, which it makes
    unique (measured: the layers dense, dense_1, dense_2 of a Sequential became ops named .../dense_1/...,
    .../dense_1_2/... and the output tensor's name), so a layer name would select another layer's ops."""
    import difflib

    resolved: list[str] = []
    for name in names:
        matches = [op for op in known if name == op or name in op.split(";")]
        if not matches:
            candidates = sorted({part for op in known for part in op.split(";") if part} | set(known))
            close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.4)
            raise UsageError(f"--exclude-nodes {name!r} is not an op of the model: TFLite names an op by its output tensor (e.g. {known[0]!r}); "
                             "Keras layer names do not map to ops (TF renames the name scopes it traces a model in)",
                             fix=(f"did you mean {', '.join(close)}? " if close else "") + "`edge-sdk debug` lists every op name")
        resolved += matches
    return sorted(set(resolved), key=resolved.index)


def quantization_converter(source: Path, options: TFLiteOptions, calibration: Dataset, input_shapes: dict[str, list[int]] | None, data: DataSettings,
                           fixed_shapes: bool = False) -> tuple[Any, Any, list[tuple[str, list[int]]]]:
    """A TFLiteConverter for `source` set up as a calibrated artifact was made: (tf, converter, input shapes).

    What edge_sdk.debug.tflite hands to TF's QuantizationDebugger (debug imports converters, never the reverse)."""
    loaded = load_model(Path(source))
    shapes = resolve_input_shapes(loaded.signature, input_shapes, Path(source))
    binding = InputBinding.bind(calibration, shapes)
    tf = require("tensorflow", "the TFLite quantization debugger")
    converter = make_converter(tf, loaded, shapes, fixed=fixed_shapes)
    configure(tf, converter, options, loaded, calibration, binding, data, Progress(enabled=False))
    return tf, converter, shapes
