"""Per-layer quantization error of an ONNX QDQ artifact through ONNX Runtime's `qdq_loss_debug`.

Both the float reference and the QDQ artifact are augmented to output every activation, run on the same real
inputs, and matched by tensor name. The reference goes through the same `quant_pre_process` the converter ran
before quantizing, so its tensor and node names are the ones `nodes_to_exclude` takes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk._lazy import require
from edge_sdk.artifact import load_artifact
from edge_sdk.data import Dataset, InputBinding, PreprocessSpec
from edge_sdk.debug.report import DebugReport, LayerError, sqnr_from_powers
from edge_sdk.errors import UsageError
from edge_sdk.formats import INT8
from edge_sdk.staging import working_directory


def _powers(reference: list[np.ndarray], other: list[np.ndarray]) -> tuple[float, float]:
    signal = float(np.mean([np.mean(np.square(r.astype(np.float64))) for r in reference]))
    noise = float(np.mean([np.mean(np.square(o.astype(np.float64) - r.astype(np.float64))) for r, o in zip(reference, other)]))
    return signal, noise


def debug_onnx(artifact: Path, reference: Path, data: Path, *, samples: int = 200, seed: int = 0, preprocess: dict[str, Any] | None = None, input_key: str | None = None,
               input_shapes: dict[str, list[int]] | None = None) -> DebugReport:
    """Rank the quantized activations of an ONNX QDQ artifact by their error on `data`."""
    require("onnxruntime", "the ONNX quantization debugger")
    onnx = require("onnx", "the ONNX quantization debugger")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    manifest = load_artifact(Path(artifact), verify=False).manifest  # debug_artifact verified it (or was told not to)
    if manifest is None or manifest.format != "onnx" or manifest.mode != INT8:
        raise UsageError(f"{artifact} is not a static int8 (QDQ) ONNX artifact with a manifest (mode {manifest.mode if manifest else None})",
                         fix="debug an artifact written by `edge-sdk convert --to onnx --quant int8 --calib DATA`")
    spec = PreprocessSpec.from_dict(manifest.preprocess).merged(preprocess or {})
    dataset = Dataset(Path(data), spec, input_key=input_key)
    from edge_sdk.debug.shapes import shapes_for_debug

    shapes = list(shapes_for_debug(manifest.input_shapes, input_shapes).items())
    binding = InputBinding.bind(dataset, shapes)
    indices = dataset.subset(samples, seed)
    qdq_model = onnx.load(str(artifact))
    _repair_per_axis_dequantize(qdq_model)
    quantize_inputs = {node.output[0]: node.input[0] for node in qdq_model.graph.node if node.op_type == "QuantizeLinear"}
    # Activations only: the input of each QuantizeLinear and the DequantizeLinear after it.
    post_qdq = {node.output[0]: quantize_inputs[node.input[0]] for node in qdq_model.graph.node if node.op_type == "DequantizeLinear" and node.input[0] in quantize_inputs}
    pre_names = sorted(set(post_qdq.values()))
    # A quantized graph output keeps its name for the QDQ result: the quantizer renames its float input.
    float_name = {name: name.removesuffix("_QuantizeLinear_Input") for name in pre_names}
    workdir = Path(tempfile.mkdtemp(prefix="edge-sdk-debug-"))
    try:
        prepared = workdir / "prepared.onnx"
        with working_directory(workdir):  # quant_pre_process drops scratch files into the cwd (issue 15)
            quant_pre_process(os.path.abspath(reference), str(prepared))
        graph = onnx.load(str(prepared), load_external_data=False).graph
        float_names = sorted(set(float_name.values()))
        float_activations = _collect(_with_outputs(onnx.load(str(prepared)), float_names, workdir / "float_aug.onnx"), float_names, dataset, binding, indices)
        qdq_names = pre_names + sorted(post_qdq)
        qdq_activations = _collect(_with_outputs(qdq_model, qdq_names, workdir / "qdq_aug.onnx"), qdq_names, dataset, binding, indices)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    floors = _relu_floors(qdq_model)
    matching = {
        float_name[pre]: {"pre_qdq": [np.maximum(value, floors[pre]) if pre in floors else value for value in qdq_activations[pre]],
                          "post_qdq": qdq_activations[post], "float": float_activations[float_name[pre]]}
        for post, pre in post_qdq.items()
    }
    producers = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    order = {output: index for index, node in enumerate(graph.node) for output in node.output}
    layers = []
    for name, match in matching.items():
        if not match.get("float"):
            continue
        local = sqnr_from_powers(*_powers(match["pre_qdq"], match["post_qdq"]))
        cumulative = sqnr_from_powers(*_powers(match["float"], match["post_qdq"]))
        producer = producers.get(name)
        # A graph input has no producing node: keeping it in float means excluding the nodes that read it.
        float_nodes = [producer.name] if producer is not None else [node.name for node in consumers.get(name, [])]
        op = producer.op_type if producer is not None else "input"
        # One naming scheme: the node name (what --exclude-nodes takes), the tensor name beside it where it differs.
        node = producer.name if producer is not None and producer.name else name
        layers.append(LayerError(index=order.get(name, -1), name=node, op=op, sqnr_db=local, float_key=float_nodes, cumulative_sqnr_db=cumulative,
                                 tensor=name if node != name else None))
    layers.sort(key=lambda layer: layer.index)
    for position, layer in enumerate(layers):
        layer.index = position
    count = dataset.num_samples if indices is None else len(indices)
    return DebugReport("onnx", str(artifact), str(reference), str(data), count, layers, notes=[
        "ONNX: SQNR of each activation's own quantize-dequantize (qdq_loss_debug pre/post QDQ); cumulative SQNR against the float model's activation.",
    ])


def _with_outputs(model: Any, names: list[str], path: Path) -> Path:
    """Save `model` with each named tensor also exposed as a graph output (through an Identity node, which also
    works for graph inputs)."""
    from onnx import TensorProto, helper

    for name in names:
        model.graph.node.append(helper.make_node("Identity", [name], [f"{name}__edge_sdk_saved"], name=f"{name}__edge_sdk_saved"))
        model.graph.output.append(helper.make_tensor_value_info(f"{name}__edge_sdk_saved", TensorProto.FLOAT, None))
    require("onnx").save_model(model, str(path))
    return path


def _collect(path: Path, names: list[str], dataset: Dataset, binding: InputBinding, indices: list[int] | None) -> dict[str, list[np.ndarray]]:
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    # Unoptimised, as qdq_loss_debug runs it: fused QLinear kernels would hide the exposed QDQ pairs.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    wanted = [f"{name}__edge_sdk_saved" for name in names]
    collected: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for sample in dataset.samples(indices):
        feeds = {name: array.astype(np.float32) for name, array in binding.fit(sample, str(dataset.path)).items()}
        for name, value in zip(names, session.run(wanted, feeds)):
            collected[name].append(value)
    return collected


def _repair_per_axis_dequantize(model: Any) -> None:
    """Point each per-channel DequantizeLinear at the axis its scales run along.

    ORT 1.32's quantizer leaves the default axis (1) on the per-channel DequantizeLinear of a (C,1,1) bias that
    quant_pre_process fuses from a lifted opset-1 Conv + Add (zoo MNIST). Fused into QLinear ops the node never
    runs, but exposing activations for debugging keeps it unfused, and ORT then refuses it.
    """
    from onnx import numpy_helper

    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in initializers or node.input[1] not in initializers:
            continue
        scales = numpy_helper.to_array(initializers[node.input[1]])
        data_shape = list(initializers[node.input[0]].dims)
        if scales.ndim != 1 or scales.size <= 1:
            continue
        axis_attribute = next((attribute for attribute in node.attribute if attribute.name == "axis"), None)
        axis = axis_attribute.i if axis_attribute is not None else 1
        if axis < len(data_shape) and data_shape[axis] == scales.size:
            continue
        matching = [index for index, size in enumerate(data_shape) if size == scales.size]
        if matching:
            if axis_attribute is None:
                from onnx import helper

                node.attribute.append(helper.make_attribute("axis", matching[0]))
            else:
                axis_attribute.i = matching[0]


def _relu_floors(model: Any) -> dict[str, float]:
    """Tensors whose QuantizeLinear range starts at 0: ORT's quantizer drops a Relu there and lets the
    QuantizeLinear clamp instead, so the QDQ input still holds negative values that are not quantization error."""
    from onnx import numpy_helper

    initializers = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    floors = {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) > 2 and node.input[2] in initializers:
            zero_point = initializers[node.input[2]]
            lowest = np.iinfo(zero_point.dtype).min if zero_point.dtype.kind in "iu" else None
            if lowest is not None and zero_point.size == 1 and int(zero_point.ravel()[0]) == lowest:
                floors[node.input[0]] = 0.0
    return floors
