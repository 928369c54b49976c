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
from edge_sdk.formats import DYNAMIC, FP16, INT8, INT16X8

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
    return inference_mode(litert_torch().to_channel_last_io(module, args=list(range(count))))


def inference_mode(module: Any) -> Any:
    """`module.eval()`, except for an ExportedProgram's module, which is exported in eval mode and refuses train()/eval()."""
    try:
        return module.eval()
    except NotImplementedError:
        return module


def float_flatbuffer(module: Any, example_shapes: list[list[int]]) -> bytes:
    """The float32 TFLite flatbuffer of `module`, traced at the example input shapes (as the flatbuffer takes them)."""
    torch = require("torch", "PyTorch to TFLite")
    converter = litert_torch()
    sample = tuple(torch.zeros(shape, dtype=torch.float32) for shape in example_shapes)
    try:
        with torch.no_grad():
            edge_model = converter.convert(inference_mode(module), sample)
    except Exception as error:  # noqa: BLE001 - torch.export and the MLIR converter raise many unrelated classes
        if isinstance(error, (KeyboardInterrupt, MemoryError)):
            raise
        raise ConversionError(f"litert-torch could not convert the PyTorch model: {type(error).__name__}: {str(error)[:1500]}",
                              fix="check the model exports with torch.export.export at this input shape (no data-dependent control flow)") from error
    return bytes(edge_model.model_content())


def signature_input_names(flatbuffer: bytes) -> tuple[list[str], str]:
    """(input names, signature key) of the flatbuffer's first signature, names in the order the PyTorch model takes them."""
    interpreter_module = require("ai_edge_litert.interpreter", "reading a TFLite signature")
    interpreter = interpreter_module.Interpreter(model_content=flatbuffer)
    signatures = interpreter.get_signature_list()
    key = next(iter(signatures))
    return list(signatures[key]["inputs"]), key


def aeq_quantize(flatbuffer: bytes, mode: str, calibration: Iterable[list[np.ndarray]] | None) -> bytes:
    """Quantize a float flatbuffer with ai-edge-quantizer: fp16 | dynamic | int8 | int16x8 (the last two calibrated)."""
    require("ai_edge_quantizer", "quantizing a TFLite model")
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe

    if mode == FP16:
        recipe_manager = quantizer.Quantizer(flatbuffer)
        recipe_manager.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                              algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
        chosen = recipe_manager.get_quantization_recipe()
    else:
        chosen = {DYNAMIC: recipe.dynamic_wi8_afp32, INT8: recipe.static_wi8_ai8, INT16X8: recipe.static_wi8_ai16}[mode]()
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
            graph = torch.export.export(inference_mode(module), sample).module()
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


def integer_io(flatbuffer: bytes, dtype: str = INT8) -> bytes:
    """Make the quantized model take and give `dtype` (drop the QUANTIZE / DEQUANTIZE ops at its inputs and outputs).

    TensorFlow's `modify_model_io_type` does the flatbuffer surgery (the same the TFLite converter applies for
    `inference_input_type`); it refuses a model whose edges are not quantized, which is our 'not full integer'."""
    tf = require("tensorflow", "int8 inputs and outputs of a TFLite model")
    from tensorflow.lite.python.util import modify_model_io_type

    from edge_sdk.inspection import analyze_tflite

    io_types = {t["dtype"] for key in ("inputs", "outputs") for t in analyze_tflite(flatbuffer)["io"][key]}
    if io_types == {dtype}:
        return flatbuffer  # ai-edge-quantizer's static recipes already give integer inputs and outputs
    target = {INT8: tf.int8, "int16": tf.int16}[dtype]  # numpy dtype names (int8 doubles as the mode's name)
    try:
        return bytes(modify_model_io_type(flatbuffer, target, target))
    except (ValueError, RuntimeError) as error:
        raise ConversionError(f"could not give the quantized model {dtype} inputs and outputs: {error}",
                              fix="an op at the model's edge stayed in float; pass --allow-float-fallback to keep float inputs and outputs") from error


def import_onnx2torch() -> Any:
    """onnx2torch, importable without a working torchvision.

    onnx2torch imports torchvision at import time for two converters only (NonMaxSuppression, RoiAlign). PyPI's
    torchvision wheels are CUDA builds whose C++ ops do not load beside the CPU torch we pin (`import torchvision`
    fails with "operator torchvision::nms does not exist"), and torchvision's CPU wheels are not on PyPI. When that
    happens, onnx2torch is imported with a stand-in `torchvision` whose ops refuse to run, so models with those two
    ops fail with a clear error and every other model converts. The stand-in is removed again at once."""
    import importlib
    import sys
    import types

    try:
        return importlib.import_module("onnx2torch")
    except ImportError as error:
        if "onnx2torch" in str(error.name or ""):
            require("onnx2torch", "converting ONNX models to TFLite")
        if "torchvision" not in str(error):
            raise
    except RuntimeError as error:
        if "torchvision" not in str(error):
            raise
    for name in [n for n in sys.modules if n.split(".")[0] in ("torchvision", "onnx2torch")]:
        del sys.modules[name]

    def unavailable(*_args: Any, **_kwargs: Any) -> Any:
        raise ConversionError("this ONNX model uses NonMaxSuppression or RoiAlign, which need torchvision's ops; torchvision does not load beside the CPU torch here",
                              fix="remove those ops from the graph (do the post-processing outside the model)")

    stand_in, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
    ops.nms = ops.roi_align = ops.box_convert = unavailable  # type: ignore[attr-defined]
    stand_in.ops = ops  # type: ignore[attr-defined]
    sys.modules.update({"torchvision": stand_in, "torchvision.ops": ops})
    try:
        return importlib.import_module("onnx2torch")
    finally:
        for name in ("torchvision", "torchvision.ops"):
            sys.modules.pop(name, None)


def constants_to_initializers(model: Any) -> Any:
    """A copy of the ONNX model whose `Constant` nodes holding a tensor are initializers instead.

    Old exporters (CNTK, the ONNX zoo's MNIST) keep weights in Constant nodes; onnx2torch reads Conv and Gemm
    weights from initializers only (KeyError otherwise)."""
    onnx = require("onnx", "ONNX to TFLite")
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    kept = []
    for node in copy.graph.node:
        tensor = next((attribute.t for attribute in node.attribute if attribute.name == "value" and attribute.type == onnx.AttributeProto.TENSOR), None)
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and tensor is not None:
            initializer = copy.graph.initializer.add()
            initializer.CopyFrom(tensor)
            initializer.name = node.output[0]
        else:
            kept.append(node)
    del copy.graph.node[:]
    copy.graph.node.extend(kept)
    return copy


def explicit_pads(model: Any) -> Any:
    """Rewrite `auto_pad=SAME_UPPER/SAME_LOWER` of Conv and pooling nodes into explicit `pads` (in place; returns it).

    onnx2torch refuses auto_pad SAME_*; with the input's spatial shape known (ONNX shape inference), the pads are
    what the ONNX spec says SAME means: total = max((ceil(in / stride) - 1) * stride + (kernel - 1) * dilation + 1 - in, 0),
    the odd one at the end for SAME_UPPER, at the start for SAME_LOWER."""
    onnx = require("onnx", "ONNX to TFLite")
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for info in list(inferred.graph.value_info) + list(inferred.graph.input):
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    initializers = {t.name: list(t.dims) for t in model.graph.initializer}
    for node in model.graph.node:
        attributes = {a.name: a for a in node.attribute}
        mode = attributes["auto_pad"].s.decode() if "auto_pad" in attributes else "NOTSET"
        if mode not in ("SAME_UPPER", "SAME_LOWER"):
            continue
        spatial = (shapes.get(node.input[0]) or [])[2:]
        if node.op_type == "Conv":
            kernel = list(attributes["kernel_shape"].ints) if "kernel_shape" in attributes else initializers.get(node.input[1], [])[2:]
        else:
            kernel = list(attributes["kernel_shape"].ints) if "kernel_shape" in attributes else []
        if not spatial or None in spatial or len(kernel) != len(spatial):
            raise ConversionError(f"node {node.name or node.op_type} pads {mode} on an input of unknown spatial size", fix="export the model with explicit pads or static input shapes")
        strides = list(attributes["strides"].ints) if "strides" in attributes else [1] * len(spatial)
        dilations = list(attributes["dilations"].ints) if "dilations" in attributes else [1] * len(spatial)
        begins, ends = [], []
        for known, k, stride, dilation in zip(spatial, kernel, strides, dilations):
            size = int(known or 0)
            total = max((-(-size // stride) - 1) * stride + (k - 1) * dilation + 1 - size, 0)
            small, large = total // 2, total - total // 2
            begins.append(small if mode == "SAME_UPPER" else large)
            ends.append(large if mode == "SAME_UPPER" else small)
        node.attribute.remove(attributes["auto_pad"])
        if "pads" in attributes:
            node.attribute.remove(attributes["pads"])
        node.attribute.append(onnx.helper.make_attribute("pads", begins + ends))
    return model


def static_reshapes(graph_module: Any) -> Any:
    """Give onnx2torch's Reshape modules their shape as Python ints where the shape is a constant (in place).

    onnx2torch's OnnxReshape reads the target shape from a tensor at run time (`if torch.any(shape == 0)`), a
    data-dependent branch torch.export cannot trace; with the shape known, the reshape is static."""
    import operator

    torch = require("torch", "ONNX to TFLite")

    class StaticReshape(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self, shape: list[int]) -> None:
            super().__init__()
            self.shape = shape

        def forward(self, tensor: Any, _shape: Any = None) -> Any:
            return torch.reshape(tensor, [tensor.shape[i] if size == 0 else size for i, size in enumerate(self.shape)])

    for node in graph_module.graph.nodes:
        if node.op != "call_module" or type(graph_module.get_submodule(node.target)).__name__ != "OnnxReshape" or len(node.args) < 2:
            continue
        shape_node = node.args[1]
        if getattr(shape_node, "op", None) != "get_attr":
            continue
        shape = [int(size) for size in operator.attrgetter(shape_node.target)(graph_module).tolist()]
        parent, _, name = node.target.rpartition(".")
        setattr(graph_module.get_submodule(parent) if parent else graph_module, name, StaticReshape(shape))
    graph_module.recompile()
    return graph_module
