"""Read what is inside an artifact without running it: ops, weights, I/O quantization, manifest.

TFLite flatbuffers are parsed with the schema that ai-edge-litert ships (no TensorFlow).
"""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path
from typing import Any

from edge_sdk._lazy import require
from edge_sdk.manifest import read_manifest, verify_artifact
from edge_sdk.errors import ModelFileError
from edge_sdk.fileio import gzip_size_of, sha256_of, size_of
from edge_sdk.formats import FORMATS

# Ops that read weights from resource variables: a Keras model converted through
# tf.saved_model.save + from_saved_model keeps its weights there, i.e. not in the file.
VARIABLE_OPS = frozenset({"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"})
# Ops that only move or reshape data: they say nothing about the precision of the compute.
LAYOUT_OPS = frozenset({"RESHAPE", "SHAPE", "STRIDED_SLICE", "PACK", "UNPACK", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "CONCATENATION", "GATHER", "SLICE", "QUANTIZE", "DEQUANTIZE"})


# ONNX ops that only move data, and the quantize/dequantize ops themselves.
ONNX_LAYOUT_OPS = frozenset({"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Shape", "Gather", "Concat", "Identity", "Constant", "Cast", "Slice"})
ONNX_QUANT_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"})


def quantized_node_share(model: Any) -> float:
    """Share of compute nodes that run on quantized data (QDQ-fed, or integer ops from dynamic quantization)."""
    dequantized = {out for node in model.graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    compute = [node for node in model.graph.node if node.op_type not in ONNX_LAYOUT_OPS | ONNX_QUANT_OPS]
    if not compute:
        return 0.0
    quantized = [n for n in compute if n.op_type.startswith("QLinear") or n.op_type.endswith("Integer") or (n.input and n.input[0] in dequantized)]
    return len(quantized) / len(compute)


def analyze_tflite(data: bytes, source: str = "model") -> dict[str, Any]:
    """Op list, share of compute ops that run in int8/int16, weight bytes and I/O of a .tflite."""
    schema = require("ai_edge_litert.schema_py_generated", "reading .tflite files")
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelFileError(f"{source} is not a TFLite flatbuffer (no TFL3 identifier)", fix="convert the model again")
    type_names = {value: name for name, value in vars(schema.TensorType).items() if not name.startswith("_")}
    op_names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    try:
        model = schema.Model.GetRootAs(data, 0)
        opcodes = []
        for index in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(index)
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            custom = code.CustomCode()
            opcodes.append(custom.decode() if custom else op_names.get(builtin, f"BUILTIN_{builtin}"))
        weight_bytes = 0
        for index in range(model.BuffersLength()):
            buffer = model.Buffers(index)
            weight_bytes += buffer.Size() if buffer.Offset() > 1 else buffer.DataLength()
        ops: list[str] = []
        compute_ops = 0
        integer_compute_ops = 0
        dynamic_range_ops = 0
        tensor_types: Counter[str] = Counter()
        io: dict[str, list[dict[str, Any]]] = {"inputs": [], "outputs": []}
        for subgraph_index in range(model.SubgraphsLength()):
            subgraph = model.Subgraphs(subgraph_index)
            for tensor_index in range(subgraph.TensorsLength()):
                tensor_types[type_names.get(subgraph.Tensors(tensor_index).Type(), "?")] += 1
            for op_index in range(subgraph.OperatorsLength()):
                operator = subgraph.Operators(op_index)
                name = opcodes[operator.OpcodeIndex()]
                ops.append(name)
                if name in LAYOUT_OPS or name in VARIABLE_OPS or operator.InputsLength() == 0:
                    continue
                compute_ops += 1
                first_input = operator.Inputs(0)
                if first_input >= 0 and type_names.get(subgraph.Tensors(first_input).Type()) in ("INT8", "UINT8", "INT16"):
                    integer_compute_ops += 1
                elif any(operator.Inputs(i) >= 0 and type_names.get(subgraph.Tensors(operator.Inputs(i)).Type()) == "INT8" for i in range(1, operator.InputsLength())):
                    dynamic_range_ops += 1  # float activations times int8 weights
            if subgraph_index == 0:
                for key, count, getter in (("inputs", subgraph.InputsLength(), subgraph.Inputs), ("outputs", subgraph.OutputsLength(), subgraph.Outputs)):
                    for position in range(count):
                        io[key].append(_tensor_info(subgraph.Tensors(getter(position)), type_names))
    except (IndexError, struct.error, ValueError, TypeError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{source} is a corrupt or truncated TFLite flatbuffer: {type(error).__name__}: {error}", fix="convert the model again") from error
    counts = Counter(ops)
    return {
        "op_count": len(ops),
        "ops": dict(sorted(counts.items())),
        "integer_op_share": (integer_compute_ops / compute_ops) if compute_ops else 0.0,
        "compute_op_count": compute_ops,
        "dynamic_range_op_count": dynamic_range_ops,
        "precision": _tflite_precision(integer_compute_ops, dynamic_range_ops, compute_ops),
        "weight_bytes": int(weight_bytes),
        "variable_ops": sorted(VARIABLE_OPS & set(counts)),
        "tensor_types": dict(sorted(tensor_types.items())),
        "io": io,
    }


def _tflite_precision(integer_ops: int, dynamic_range_ops: int, compute_ops: int) -> str:
    """'integer', 'dynamic-range' (int8 weights, float activations), 'mixed' or 'float' compute."""
    if compute_ops and integer_ops == compute_ops:
        return "integer"
    if dynamic_range_ops and not integer_ops:
        return "dynamic-range"
    return "mixed" if integer_ops else "float"


def _tensor_info(tensor: Any, type_names: dict[int, str]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": tensor.Name().decode(errors="replace") if tensor.Name() else "",
        "shape": [int(d) for d in tensor.ShapeSignatureAsNumpy()] if tensor.ShapeSignatureLength() else [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else [],
        "dtype": type_names.get(tensor.Type(), "?").lower(),
    }
    quantization = tensor.Quantization()
    if quantization is not None and quantization.ScaleLength():
        info["quantization"] = {"scale": float(quantization.Scale(0)), "zero_point": int(quantization.ZeroPoint(0)) if quantization.ZeroPointLength() else 0}
    return info


def analyze_onnx(path: Path) -> dict[str, Any]:
    """Opset, op list, share of compute nodes on quantized data, I/O and external data of an .onnx file."""
    from edge_sdk.loaders.onnx_intake import default_opset, onnx_signature, read_onnx

    model, external = read_onnx(Path(path))
    ops = Counter(node.op_type for node in model.graph.node)
    nested = Counter(node.op_type for node in _subgraph_nodes(model.graph))
    signature = onnx_signature(model)
    return {
        "opset": default_opset(model),
        "op_count": sum(ops.values()),
        "ops": dict(sorted(ops.items())),
        # Ops inside If / Loop / Scan bodies (silero-vad runs its whole network inside If branches).
        "subgraph_ops": dict(sorted(nested.items())),
        "subgraph_op_count": sum(nested.values()),
        "integer_op_share": quantized_node_share(model),
        "io": {"inputs": [t.to_dict() for t in signature.inputs], "outputs": [t.to_dict() for t in signature.outputs]},
        "external_data": external,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
    }


def inspect_tflite(path: Path) -> dict[str, Any]:
    """analyze_tflite of a .tflite file (the format table's inspector for tflite)."""
    return analyze_tflite(Path(path).read_bytes(), str(path))


def _subgraph_nodes(graph: Any) -> list[Any]:
    """Every node inside the graph attributes (If branches, Loop / Scan bodies) of `graph`'s nodes, recursively."""
    found = []
    for node in graph.node:
        for attribute in node.attribute:
            for body in [attribute.g] if attribute.HasField("g") else list(attribute.graphs):
                found.extend(body.node)
                found.extend(_subgraph_nodes(body))
    return found


def inspect_artifact(path: Path) -> dict[str, Any]:
    """Everything `edge-sdk inspect` shows: file facts, manifest, and for .tflite the parsed content."""
    from edge_sdk.models import detect_model_kind

    path = Path(path)
    kind = detect_model_kind(path)
    info: dict[str, Any] = {"path": str(path), "kind": kind, "size_bytes": size_of(path), "sha256": sha256_of(path)}
    if path.is_file():
        info["gzip_size_bytes"] = gzip_size_of(path)
    spec = FORMATS.get(kind)
    if spec is not None and spec.inspector:  # the format table names each format's reader
        info[kind] = spec.inspect(path)
    elif kind in ("h5", "keras"):  # a Keras source model: its config read as data (edge_sdk.keras_inspection)
        from edge_sdk.keras_inspection import inspect_keras_file

        info["keras"] = inspect_keras_file(path, kind)
    if isinstance(info.get(kind), dict) and "external_data" in info[kind]:
        # The artifact is the graph file and the external data files it points at (ONNX): size them together.
        info["graph_size_bytes"] = info["size_bytes"]
        info["size_bytes"] += sum(size_of(path.parent / name) for name in info[kind]["external_data"])
    manifest = read_manifest(path)
    info["manifest"] = manifest.to_dict() if manifest else None
    # inspect shows a file that does not match its manifest; bench, run, debug and serve refuse it.
    info["verification"] = verify_artifact(path, manifest) if manifest and path.is_file() else None
    return info
