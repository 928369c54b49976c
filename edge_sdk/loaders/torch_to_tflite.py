"""PyTorch -> TFLite flatbuffers with litert-torch, quantized by ai-edge-quantizer or litert-torch's PT2E quantizer.

`float_flatbuffer` exports an nn.Module (or an ExportedProgram's module) with `litert_torch.convert`, which needs
no TensorFlow. Quantized modes start from that float flatbuffer (ai-edge-quantizer recipes: fp16 weights by float
casting, dynamic-range int8, static int8 and int16x8) or, for int8 with `quantizer="pt2e"`, from the PyTorch graph
(torchao's prepare_pt2e/convert_pt2e with litert-torch's PT2EQuantizer). Both quantizers leave float inputs and
outputs with QUANTIZE/DEQUANTIZE at the edges; `integer_io` removes those so that int8 models take and give int8,
like the Keras path's `inference_input_type = tf.int8`.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from edge_sdk._lazy import require
from edge_sdk.errors import ConversionError

# int8 quantizers: "aeq" = ai-edge-quantizer's static_wi8_ai8 recipe on the float flatbuffer, "pt2e" = litert-torch's
# PT2EQuantizer (per-channel symmetric weights, histogram observers) in the PyTorch graph. AEQ is the default: it
# was the more accurate of the two on both models measured (README, "PyTorch to TFLite").
INT8_QUANTIZERS = ("aeq", "pt2e")
DEFAULT_INT8_QUANTIZER = "aeq"
TORCH_TFLITE_EXTRA = "torch-tflite"


def litert_torch() -> Any:
    """The litert_torch module, or MissingDependencyError naming the extra and its own constraints file."""
    # litert-torch imports jax; keep jax from grabbing every core or the GPU it does not use here.
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")  # its progress lines would go to our stdout
    return require("litert_torch", "PyTorch and ONNX to TFLite")


def nchw_to_nhwc(shape: list[int]) -> list[int]:
    """(N, C, ...) -> (N, ..., C): the input shape of a model made with --nhwc-input."""
    return [shape[0], *shape[2:], shape[1]] if len(shape) >= 3 else list(shape)


def wrap_nhwc(module: Any, count: int) -> Any:
    """The module behind a transpose of each of its `count` inputs from channel-last to channel-first."""
    return litert_torch().to_channel_last_io(module, args=list(range(count))).eval()


def float_flatbuffer(module: Any, example_shapes: list[list[int]]) -> bytes:
    """The float32 TFLite flatbuffer of `module`, traced at the example input shapes (as the flatbuffer takes them)."""
    torch = require("torch", "PyTorch to TFLite")
    converter = litert_torch()
    sample = tuple(torch.zeros(shape, dtype=torch.float32) for shape in example_shapes)
    try:
        with torch.no_grad():
            edge_model = converter.convert(module.eval(), sample)
    except Exception as error:  # noqa: BLE001 - torch.export and the MLIR converter raise many unrelated classes
        if isinstance(error, (KeyboardInterrupt, MemoryError)):
            raise
        raise ConversionError(f"litert-torch could not convert the PyTorch model: {type(error).__name__}: {str(error)[:1500]}",
                              fix="check the model exports with torch.export.export at this input shape (no data-dependent control flow)") from error
    return bytes(edge_model.model_content())


def signature_input_names(flatbuffer: bytes) -> list[str]:
    """Input names of the flatbuffer's default signature, in the order the PyTorch model takes them."""
    interpreter_module = require("ai_edge_litert.interpreter", "reading a TFLite signature")
    interpreter = interpreter_module.Interpreter(model_content=flatbuffer)
    signatures = interpreter.get_signature_list()
    key = next(iter(signatures))
    return list(signatures[key]["inputs"]), key  # type: ignore[return-value]


def aeq_quantize(flatbuffer: bytes, mode: str, calibration: Iterable[list[np.ndarray]] | None) -> bytes:
    """Quantize a float flatbuffer with ai-edge-quantizer: fp16 | dynamic | int8 | int16x8 (the last two calibrated)."""
    require("ai_edge_quantizer", "quantizing a TFLite model")
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe

    if mode == "fp16":
        recipe_manager = quantizer.Quantizer(flatbuffer)
        recipe_manager.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                              algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
        chosen = recipe_manager.get_quantization_recipe()
    else:
        chosen = {"dynamic": recipe.dynamic_wi8_afp32, "int8": recipe.static_wi8_ai8, "int16x8": recipe.static_wi8_ai16}[mode]()
    job = quantizer.Quantizer(flatbuffer, chosen)
    try:
        result = None
        if job.need_calibration:
            names, key = signature_input_names(flatbuffer)
            samples = [dict(zip(names, arrays)) for arrays in (calibration or [])]
            if not samples:
                raise ConversionError(f"--quant {mode} needs calibration samples")
            with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar: our progress is the SDK's own
                result = job.calibrate({key: samples}, num_threads=1)
        quantized = job.quantize(result, enable_progress_bar=False, enable_progress_report=False).quantized_model
    except (ValueError, RuntimeError, KeyError, TypeError) as error:
        raise ConversionError(f"ai-edge-quantizer could not quantize the model ({mode}): {type(error).__name__}: {error}",
                              fix="try --torch-quantizer pt2e for int8, or --allow-float-fallback") from error
    return bytes(quantized)


def pt2e_quantize(module: Any, example_shapes: list[list[int]], calibration: Iterable[list[np.ndarray]]) -> bytes:
    """int8 with litert-torch's PT2EQuantizer: per-channel symmetric weights, histogram-observed activations."""
    torch = require("torch", "PyTorch to TFLite")
    converter = litert_torch()
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e

    sample = tuple(torch.zeros(shape, dtype=torch.float32) for shape in example_shapes)
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    try:
        with torch.no_grad():
            graph = torch.export.export(module.eval(), sample).module()
            prepared = quantize_pt2e.prepare_pt2e(graph, quantizer)
            count = 0
            for arrays in calibration:
                prepared(*[torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in arrays])
                count += 1
            if not count:
                raise ConversionError("--quant int8 needs calibration samples")
            converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
            edge_model = converter.convert(converted, sample, quant_config=QuantConfig(pt2e_quantizer=quantizer))
    except ConversionError:
        raise
    except Exception as error:  # noqa: BLE001 - torch.export, torchao and the converter raise many unrelated classes
        if isinstance(error, (KeyboardInterrupt, MemoryError)):
            raise
        raise ConversionError(f"PT2E quantization with litert-torch failed: {type(error).__name__}: {str(error)[:1500]}",
                              fix="try --torch-quantizer aeq") from error
    return bytes(edge_model.model_content())


def integer_io(flatbuffer: bytes, dtype: str = "int8") -> bytes:
    """Make the quantized model take and give `dtype` (drop the QUANTIZE / DEQUANTIZE ops at its inputs and outputs).

    TensorFlow's `modify_model_io_type` does the flatbuffer surgery (the same the TFLite converter applies for
    `inference_input_type`); it refuses a model whose edges are not quantized, which is our 'not full integer'."""
    tf = require("tensorflow", "int8 inputs and outputs of a TFLite model")
    from tensorflow.lite.python.util import modify_model_io_type

    from edge_sdk.inspection import analyze_tflite

    io_types = {t["dtype"] for key in ("inputs", "outputs") for t in analyze_tflite(flatbuffer)["io"][key]}
    if io_types == {dtype}:
        return flatbuffer  # ai-edge-quantizer's static recipes already give integer inputs and outputs
    target = {"int8": tf.int8, "int16": tf.int16}[dtype]
    try:
        return bytes(modify_model_io_type(flatbuffer, target, target))
    except (ValueError, RuntimeError) as error:
        raise ConversionError(f"could not give the quantized model {dtype} inputs and outputs: {error}",
                              fix="an op at the model's edge stayed in float; pass --allow-float-fallback to keep float inputs and outputs") from error
