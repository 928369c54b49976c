"""Keras 3 / tf_keras / SavedModel -> TFLite in fp32, fp16, dynamic-range, full int8 and int16x8.

Conversion paths that work with Keras 3 (DEVELOPERS.md): `TFLiteConverter.from_keras_model` for
in-memory Keras models and `from_saved_model` for SavedModel folders exported with
`model.export(dir)`. `tf.saved_model.save(keras_model)` folders convert *without an error* to
a model whose weights stay in resource variables: `check_weights_present` refuses those, and
every conversion is validated against its source on real data when data is given.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk._lazy import require
from edge_sdk.artifact import Artifact, load_artifact, manifest_path_for
from edge_sdk.manifest import manifest_from_record, write_manifest
from edge_sdk.compression.weights import source_weight_statistics
from edge_sdk.data import Dataset, InputBinding, PreprocessSpec
from edge_sdk.environment import package_versions
from edge_sdk.errors import ConversionError, UsageError
from edge_sdk.fileio import atomic_path, check_can_write, gzip_size_of, sha256_of
from edge_sdk.inspection import analyze_tflite
from edge_sdk.models import LoadedModel, load_model, resolve_input_shapes
from edge_sdk.progress import Progress

MODES = ("fp32", "fp16", "dynamic", "int8", "int16x8")
CALIBRATED_MODES = ("int8", "int16x8")

# Minimum agreement with the source model on real data, per mode (cosine of the outputs).
# Float modes must match closely; quantized ones only have to be sane (accuracy is bench's job).
MIN_COSINE = {"fp32": 0.9999, "fp16": 0.999, "dynamic": 0.98, "int8": 0.9, "int16x8": 0.98}


@dataclass
class TFLiteOptions:
    mode: str = "fp32"
    calibration_samples: int | None = 300
    seed: int = 0
    input_shapes: dict[str, list[int]] | None = None
    validation_samples: int = 100
    # int8: allow float kernels where an op has no int8 kernel (else the conversion fails).
    allow_float_fallback: bool = False
    # Selective quantization (edge-sdk debug --max-drop): layers (output tensor names) and op types kept in
    # float through QuantizationDebugger's denylists; such models keep float inputs and outputs.
    float_nodes: list[str] = field(default_factory=list)
    float_ops: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"--quant {self.mode!r} is not a TFLite mode; choose one of {', '.join(MODES)}")
        if (self.float_nodes or self.float_ops) and self.mode not in CALIBRATED_MODES:
            raise UsageError(f"float nodes / ops apply to calibrated modes ({', '.join(CALIBRATED_MODES)}), not --quant {self.mode}")


def convert(
    model_path: Path,
    output: Path,
    options: TFLiteOptions,
    calibration: Dataset | None = None,
    *,
    validation: Dataset | None = None,
    preprocess: PreprocessSpec | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Artifact:
    """Convert `model_path` to `output` (.tflite) with a manifest beside it; returns the Artifact."""
    progress = progress or Progress(enabled=False)
    output = Path(output)
    check_can_write(output, overwrite, "artifact")
    check_can_write(manifest_path_for(output), overwrite, "manifest")
    loaded = load_model(Path(model_path))
    shapes = resolve_input_shapes(loaded.signature, options.input_shapes, Path(model_path))
    learned_ranges = options.mode == "int8" and loaded.quantization_aware
    if options.mode in CALIBRATED_MODES and calibration is None and not learned_ranges:
        raise UsageError(f"--quant {options.mode} needs calibration data", fix="pass --calib DATA (.npz, .npy or an image folder)")
    binding = InputBinding.bind(calibration, shapes) if calibration else None

    tf = require("tensorflow", "TFLite conversion")
    started = time.perf_counter()
    converter = _make_converter(tf, loaded, shapes)
    calibration_used = _configure(tf, converter, options, loaded, calibration, binding, progress)
    progress.message(f"converting {model_path} to TFLite {options.mode} ...")
    try:
        if options.float_nodes or options.float_ops:
            from edge_sdk.debug.tflite import selective_quantize

            flatbuffer = selective_quantize(tf, converter, options.float_nodes, options.float_ops)
        else:
            flatbuffer = converter.convert()
    except (ValueError, RuntimeError, TypeError, tf.errors.OpError) as error:
        raise ConversionError(f"TFLite conversion of {model_path} ({options.mode}) failed: {error}", fix=_conversion_fix(options)) from error
    except Exception as error:  # noqa: BLE001 - TF's ConverterError derives from Exception directly
        if type(error).__name__ != "ConverterError":
            raise
        raise ConversionError(f"TFLite conversion of {model_path} ({options.mode}) failed: {error}", fix=_conversion_fix(options)) from error
    conversion_seconds = time.perf_counter() - started
    analysis = analyze_tflite(flatbuffer, str(output))
    check_weights_present(analysis, loaded, Path(model_path))
    if learned_ranges and analysis["integer_op_share"] < 1.0 and not options.allow_float_fallback:
        raise ConversionError(
            f"the quantization-aware model {model_path} did not convert to full int8 ({100 * analysis['integer_op_share']:.0f}% of compute ops in integer)",
            fix="quantize every layer with tfmot (quantize_model), or pass --allow-float-fallback",
        )

    with atomic_path(output) as tmp:
        tmp.write_bytes(flatbuffer)
        validation_report = _validate(tmp, loaded, validation or calibration, shapes, options, Path(model_path))
        spec = calibration.spec if calibration else (validation.spec if validation else preprocess)
        manifest = _manifest(Path(model_path), loaded, options, analysis, calibration, calibration_used, validation_report, conversion_seconds, tmp, shapes, spec)
        write_manifest(output, manifest_from_record(manifest, where=f"manifest of {output}"))
    return load_artifact(output)


def _make_converter(tf: Any, loaded: LoadedModel, shapes: list[tuple[str, list[int]]]) -> Any:
    declared = [[d for d in t.shape] for t in loaded.signature.inputs]
    needs_concrete_shapes = any(None in dims[1:] for dims in declared)
    if loaded.framework == "savedmodel":
        if needs_concrete_shapes:
            raise UsageError(f"SavedModel {loaded.path} has dynamic input dimensions; re-export it with fixed shapes")
        return tf.lite.TFLiteConverter.from_saved_model(str(loaded.path), signature_keys=["serving_default"])
    if needs_concrete_shapes:
        # A user-given --input-shape: trace the model once with concrete shapes.
        specs = [tf.TensorSpec(shape, tf.float32) for _, shape in shapes]
        function = tf.function(lambda *args: loaded.model(list(args) if len(args) > 1 else args[0], training=False))
        return tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function(*specs)], loaded.model)
    return tf.lite.TFLiteConverter.from_keras_model(loaded.model)


def _configure(tf: Any, converter: Any, options: TFLiteOptions, loaded: LoadedModel, calibration: Dataset | None, binding: InputBinding | None, progress: Progress) -> int:
    """Set the converter up for the mode; returns how many calibration samples will be used."""
    mode = options.mode
    if mode == "fp32":
        return 0
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "fp16":
        converter.target_spec.supported_types = [tf.float16]
        return 0
    if mode == "dynamic":
        return 0
    if mode == "int8" and loaded.quantization_aware:
        # A QAT model carries its ranges in FakeQuant ops: convert with those, never calibrate (issue #6).
        # TF 2.21 checks for a representative dataset *before* it looks at the graph whenever supported_ops is
        # TFLITE_BUILTINS_INT8 (QuantizationMode built with graph_def=None in _save_conversion_params_metric), and
        # with a representative dataset it re-calibrates QAT graphs. With supported_ops left at its default, the
        # later check sees the FakeQuant ops and converts to integer kernels; `convert` then requires 100% integer.
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        return 0
    indices = calibration.subset(options.calibration_samples, options.seed) if calibration else None
    count = 0
    if calibration is not None and binding is not None:
        count = calibration.num_samples if indices is None else len(indices)
        converter.representative_dataset = _representative_dataset(calibration, binding, indices, count, progress)
    if mode == "int8":
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


def _validate(tflite_path: Path, loaded: LoadedModel, data: Dataset | None, shapes: list[tuple[str, list[int]]], options: TFLiteOptions, source: Path) -> dict[str, Any]:
    """Run the artifact and its source on the same real samples and compare (STYLE 14)."""
    if data is None:
        return {"status": "skipped", "reason": "no data given (pass --calib or --validate-data)"}
    from targets.runners.litert import LiteRTRunner
    from targets.runners.reference import ReferenceRunner

    indices = data.subset(options.validation_samples, options.seed + 1)
    binding = InputBinding.bind(data, shapes)
    artifact_outputs, fitted_samples = [], []
    with LiteRTRunner(tflite_path) as runner:
        for sample in data.samples(indices):
            fitted = binding.fit(sample, str(data.path))
            fitted_samples.append(fitted)
            by_runner_name = {spec.name: fitted[name] for spec, (name, _) in zip(runner.inputs, binding.model_inputs)}
            artifact_outputs.append(next(iter(runner.infer(by_runner_name).values()))[0])
    # The source model runs the (bounded) validation subset as one batch where it can.
    reference = ReferenceRunner.from_loaded(loaded)
    batches = [fitted_samples] if reference.supports_batching else [[f] for f in fitted_samples]
    source_outputs = []
    for batch in batches:
        stacked = {name: np.concatenate([f[name] for f in batch]) for name in batch[0]}
        source_outputs.extend(next(iter(reference.infer(stacked).values())))
    from edge_sdk.fidelity import primary_fidelity

    # Over a single value top-1 and cosine are always perfect: left out, not reported.
    figures = primary_fidelity(np.stack(artifact_outputs), np.stack(source_outputs))
    figures = {key: (None if value is None or not np.isfinite(value) else value) for key, value in figures.items()}
    cosine = figures["cosine_mean"] if figures["cosine_mean"] is not None else 1.0
    status = "passed" if cosine >= MIN_COSINE[options.mode] else "failed"
    report = {"status": status, "samples": len(artifact_outputs), "min_cosine": MIN_COSINE[options.mode], **figures}
    if status == "failed":
        raise ConversionError(
            f"the {options.mode} TFLite model does not behave like {source}: mean cosine {cosine:.4f} "
            f"< {MIN_COSINE[options.mode]} on {len(artifact_outputs)} real samples (SQNR {figures['sqnr_db']} dB)",
            fix="check the calibration data matches the evaluation preprocessing (edge-sdk inspect shows the spec)",
        )
    return report


def _manifest(source: Path, loaded: LoadedModel, options: TFLiteOptions, analysis: dict[str, Any], calibration: Dataset | None, calibration_used: int, validation: dict[str, Any], seconds: float, artifact_file: Path, shapes: list[tuple[str, list[int]]], spec: PreprocessSpec | None) -> dict[str, Any]:
    return {
        "format": "tflite",
        "mode": options.mode,
        "options": asdict(options),
        "source": {"path": str(source), "sha256": sha256_of(source), "kind": loaded.kind, "framework": loaded.framework, "parameters": loaded.parameter_count, "notes": loaded.notes, "quantization_aware": loaded.quantization_aware},
        "signature": loaded.signature.to_dict(),
        "input_shapes": {name: shape for name, shape in shapes},
        "io": analysis["io"],
        "preprocess": spec.to_dict() if spec else None,
        "calibration": {"path": str(calibration.path), "sha256": sha256_of(calibration.path), "samples": calibration_used, "seed": options.seed} if calibration and calibration_used else None,
        "quantization_ranges": _quantization_ranges(options, loaded, calibration_used),
        "weights": source_weight_statistics(loaded),
        "ops": analysis["ops"],
        "op_count": analysis["op_count"],
        "integer_op_share": analysis["integer_op_share"],
        "weight_bytes": analysis["weight_bytes"],
        "size_bytes": artifact_file.stat().st_size,
        "gzip_size_bytes": gzip_size_of(artifact_file),
        "sha256": sha256_of(artifact_file),
        "conversion_seconds": round(seconds, 3),
        "validation": validation,
        "toolchain": package_versions(("tensorflow", "keras", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "numpy")),
    }


def _quantization_ranges(options: TFLiteOptions, loaded: LoadedModel, calibration_used: int) -> str | None:
    if options.mode not in CALIBRATED_MODES:
        return None
    return "learned (quantization-aware training)" if options.mode == "int8" and loaded.quantization_aware else f"calibrated on {calibration_used} samples"


def _conversion_fix(options: TFLiteOptions) -> str:
    if options.mode == "int8" and not options.allow_float_fallback:
        return "an op without an int8 kernel stops full-integer conversion; pass --allow-float-fallback to keep it in float"
    return "check the model converts with tf.lite.TFLiteConverter; see the message above"


def options_for(**settings: Any) -> TFLiteOptions:
    """TFLiteOptions from the API's generic settings."""
    return TFLiteOptions(**settings)
