"""Per-layer quantization error of a TFLite int8 artifact through `tf.lite.experimental.QuantizationDebugger`.

The debugger needs the float source, not the artifact: it re-quantizes the reference with the artifact's own
calibration settings (read from its manifest) with NumericVerify ops after every quantized layer, which run the
float kernel on the same quantized inputs. Each layer's error is therefore its own, not the sum of the layers
before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.artifact import load_artifact
from edge_sdk.data import Dataset, InputBinding, PreprocessSpec
from edge_sdk.debug.report import DebugReport, LayerError, sqnr_from_powers
from edge_sdk.errors import UsageError


def _signal_power(float_tensor: np.ndarray, quant_tensor: np.ndarray, scale: float, zero_point: int) -> float:
    """Power of the dequantized layer output. The float tensor handed to direct-compare metrics cannot be used:
    the interpreter reuses its buffer (TF 2.21 returns another layer's data for some layers), while the noise
    comes from the NumericVerify differences themselves (`mean_squared_error`)."""
    return float(np.mean(np.square((quant_tensor.astype(np.float64) - zero_point) * scale)))


def quantization_converter(artifact: Path, reference: Path, preprocess: dict[str, Any] | None = None,
                           input_shapes: dict[str, list[int]] | None = None) -> tuple[Any, Any, list[tuple[str, list[int]]], PreprocessSpec]:
    """A TFLiteConverter for `reference` set up as the artifact was made: (tf, converter, input shapes, spec)."""
    from converters.options import DataSettings, TFLiteOptions
    from converters.tflite import quantization_converter as converter_for
    from edge_sdk.formats import FORMATS

    manifest = load_artifact(Path(artifact), verify=False).manifest  # debug_artifact verified it (or was told not to)
    calibration = manifest.calibration if manifest else None
    tflite = FORMATS["tflite"]
    if manifest is None or manifest.format != tflite.name or not tflite.needs_calibration(manifest.mode) or not calibration:
        raise UsageError(f"{artifact} is not a calibrated TFLite artifact with a manifest (format {manifest.format if manifest else None}, mode {manifest.mode if manifest else None})",
                         fix="debug an int8 artifact written by `edge-sdk convert --quant int8 --calib DATA`")
    spec = PreprocessSpec.from_dict(manifest.preprocess).merged(preprocess or {})
    calibration_set = Dataset(Path(calibration["path"]), spec)
    data = DataSettings(calibration_samples=calibration["samples"], seed=calibration["seed"])
    from edge_sdk.debug.shapes import shapes_for_debug

    shapes_given = shapes_for_debug(manifest.input_shapes, input_shapes)
    # Traced as the artifact was (fixed shapes where convert --input-shape fixed them), so that node names match it.
    fixed = bool(manifest.details.get("input_shapes_fixed"))
    tf, converter, shapes = converter_for(Path(reference), TFLiteOptions(mode=manifest.mode), calibration_set, shapes_given or None, data, fixed_shapes=fixed)
    return tf, converter, shapes, spec


def debug_tflite(artifact: Path, reference: Path, data: Path, *, samples: int = 200, seed: int = 0, preprocess: dict[str, Any] | None = None, input_key: str | None = None,
                 input_shapes: dict[str, list[int]] | None = None) -> DebugReport:
    """Rank the layers of a TFLite int8 artifact by their quantization error on `data`."""
    tf, converter, shapes, spec = quantization_converter(artifact, reference, preprocess, input_shapes)
    dataset = Dataset(Path(data), spec, input_key=input_key)
    binding = InputBinding.bind(dataset, shapes)
    indices = dataset.subset(samples, seed)

    def debug_dataset() -> Iterator[list[np.ndarray]]:
        for sample in dataset.samples(indices):
            fitted = binding.fit(sample, str(dataset.path))
            yield [fitted[name].astype(np.float32) for name, _ in shapes]

    options = tf.lite.experimental.QuantizationDebugOptions(layer_direct_compare_metrics={"signal_power": _signal_power})
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=debug_dataset, debug_options=options)
    debugger.run()
    layers = []
    interpreter = debugger._quant_interpreter  # the debugger exposes op names only through its CSV dump
    for index, (verify_name, figures) in enumerate(debugger.layer_statistics.items()):
        tensor_name, _ = debugger._get_operand_name_and_index(verify_name)
        tensor_index = debugger._numeric_verify_op_details[verify_name]["inputs"][0]
        op = interpreter._get_op_details(debugger._defining_op[tensor_index])["op_name"]
        scale = float(interpreter._get_tensor_details(tensor_index, subgraph_index=0)["quantization_parameters"]["scales"][0])
        mse = float(figures["mean_squared_error"])
        layers.append(LayerError(
            index=index, name=tensor_name, op=op, sqnr_db=sqnr_from_powers(figures["signal_power"], mse),
            float_key=[tensor_name], rmse_over_scale=float(np.sqrt(mse)) / scale if scale else None, scale=scale,
        ))
    count = dataset.num_samples if indices is None else len(indices)
    return DebugReport("tflite", str(artifact), str(reference), str(data), count, layers,
                       notes=["TFLite: per-layer error from QuantizationDebugger (the layer's float kernel on the same quantized inputs).",
                              "TFLite names an op by its output tensor: the names here are what `convert --exclude-nodes` takes."])
