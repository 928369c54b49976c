"""ONNX intake: read a `.onnx` file (with its external data), check it, lift old opsets, read its signature.

Old models (the ONNX zoo's opset-1 MNIST, exported by CNTK in 2018) are refused by ONNX
Runtime. `onnx.version_converter` lifts most ops, but its Add/Mul adapter cannot handle the
opset-1 `broadcast=1, axis=k` form with a 1-D constant (it fails shape inference). We rewrite
those nodes first (reshape the constant so numpy broadcasting does what `axis` said), then
let the version converter do the rest, and check the result with the full ONNX checker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk._lazy import require
from edge_sdk.errors import ModelFileError
from edge_sdk.models import LoadedModel, ModelSignature, TensorInfo

# The opset the SDK lifts old models to: supported by every ONNX Runtime we ship.
TARGET_OPSET = 13
# Below this, ONNX Runtime refuses the model (it supports opset 7 and later).
MIN_RUNTIME_OPSET = 7
# Opset-1 elementwise ops that broadcast with a legacy `axis` attribute.
LEGACY_BROADCAST_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Greater", "Less"})

ELEMENT_TYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "float64", 16: "bfloat16"}


def default_opset(model: Any) -> int:
    """The version of the default ("" / ai.onnx) domain the model imports."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 0


def read_onnx(path: Path) -> tuple[Any, list[str]]:
    """(model, external data files): parse a .onnx file and load its external data; clear errors for a bad file or missing data."""
    onnx = require("onnx", f"reading {path}")
    from google.protobuf.message import DecodeError

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as error:
        raise ModelFileError(f"{path} is not a valid ONNX protobuf: {error}", fix="re-export the model; check the download was complete") from error
    if not model.graph.node and not model.graph.output:
        # protobuf parses many non-ONNX byte strings as an empty message
        raise ModelFileError(f"{path} is not a valid ONNX protobuf (no graph)", fix="re-export the model; check the download was complete")
    folder = path.parent.resolve()
    for location in external_data_files(model):
        # onnx refuses these later with a ValidationError; name the file and the rule instead
        target = (folder / location).resolve()
        if Path(location).is_absolute() or (target != folder and folder not in target.parents):
            raise ModelFileError(f"{path} points its external data at {location!r}, outside its own folder {path.parent}",
                                 fix="keep the .data file(s) beside the .onnx file and refer to them by file name")
        if target.exists() and not target.is_file():
            raise ModelFileError(f"{path}: its external data {location!r} is not a regular file", fix="give the .data file written with the model")
    missing = sorted({location for location in external_data_files(model) if not (path.parent / location).exists()})
    if missing:
        raise ModelFileError(
            f"{path} keeps its weights in external data file(s) {missing}, not found beside it in {path.parent}",
            fix="copy the .data file(s) next to the .onnx file (torch.onnx.export writes MODEL.onnx.data)",
        )
    external = external_data_files(model)
    if external:
        try:
            onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
        except (OSError, ValueError, onnx.checker.ValidationError) as error:
            raise ModelFileError(f"{path}: its external data {external} cannot be read: {type(error).__name__}: {error}",
                                 fix="copy the .data file(s) written with the model beside it, unchanged") from error
    return model, external


def external_data_files(model: Any) -> list[str]:
    """Relative paths of the external data files a model's initializers point at."""
    locations = []
    for tensor in model.graph.initializer:
        if tensor.data_location == 1:  # TensorProto.EXTERNAL
            entries = {entry.key: entry.value for entry in tensor.external_data}
            if entries.get("location") and entries["location"] not in locations:
                locations.append(entries["location"])
    return locations


def check_onnx(model: Any, source: str) -> None:
    """The full ONNX checker (with shape inference): unknown ops and broken graphs fail here."""
    onnx = require("onnx", f"checking {source}")
    try:
        onnx.checker.check_model(model, full_check=True)
    # The C++ checker also raises ValueError (unknown tensor type, a name that is not UTF-8) for a damaged file.
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ValueError) as error:
        raise ModelFileError(f"{source} fails the ONNX checker (opset {default_opset(model)}): {error}", fix="re-export the model with a current exporter") from error


def lift_opset(model: Any, source: str, target: int = TARGET_OPSET) -> Any:
    """A copy of `model` at opset `target`; weights are kept. A clear error naming the opset when impossible.

    Node by node where every op is one whose meaning did not change between the model's opset and
    `target` (after the legacy rewrites below); else through `onnx.version_converter`.
    """
    onnx = require("onnx", f"lifting {source}")
    from onnx import version_converter

    opset = default_opset(model)
    lifted = onnx.ModelProto()
    lifted.CopyFrom(model)
    try:
        _rewrite_legacy_broadcast(lifted, source)
        _rewrite_legacy_reshape(lifted)
        # Old exporters store value_info that no longer fits the rewritten constants; shape inference redoes it.
        del lifted.graph.value_info[:]
        if {node.op_type for node in lifted.graph.node} <= STABLE_OPS:
            for entry in lifted.opset_import:
                if entry.domain in ("", "ai.onnx"):
                    entry.version = target
            # IR 3 wants every initializer listed as a graph input; opset 13 belongs to IR 7.
            lifted.ir_version = max(lifted.ir_version, 7)
        else:
            lifted = version_converter.convert_version(lifted, target)
        onnx.checker.check_model(lifted, full_check=True)
    except (RuntimeError, ValueError, IndexError, KeyError, TypeError, onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ModelFileError(
            f"{source} uses opset {opset}, which ONNX Runtime does not run, and it could not be lifted to opset {target}: {error}",
            fix=f"re-export the model at opset {MIN_RUNTIME_OPSET} or later",
        ) from error
    return lifted


# Ops whose behaviour at their default attributes is the same from opset 1 to 13, once the legacy
# broadcast and Reshape forms are rewritten (Softmax, Pad, Slice, Upsample... are not).
STABLE_OPS = frozenset({
    "Constant", "Conv", "Relu", "Sigmoid", "Tanh", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "MatMul", "Add", "Sub", "Mul", "Div", "Reshape", "Transpose", "Identity", "LeakyRelu", "Concat",
})


def _rewrite_legacy_reshape(model: Any) -> None:
    """Opset < 5 Reshape takes its target shape as an attribute; later opsets take it as an input."""
    onnx = require("onnx")
    from onnx import numpy_helper

    for node in model.graph.node:
        shape = next((a for a in node.attribute if a.name == "shape"), None)
        if node.op_type != "Reshape" or shape is None:
            continue
        name = f"{node.output[0]}__shape"
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(onnx.helper.get_attribute_value(shape), np.int64), name))
        node.input.append(name)
        kept = [a for a in node.attribute if a.name != "shape"]
        del node.attribute[:]
        node.attribute.extend(kept)


def _rewrite_legacy_broadcast(model: Any, source: str) -> None:
    """Opset < 7 `broadcast=1, axis=k`: reshape the constant operand so numpy broadcasting matches."""
    onnx = require("onnx")
    from onnx import numpy_helper

    if default_opset(model) >= 7:
        return
    constants = {node.output[0]: node for node in model.graph.node if node.op_type == "Constant"}
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    ranks = _known_ranks(model)
    for node in model.graph.node:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if "broadcast" not in attributes and "axis" not in attributes or node.op_type not in LEGACY_BROADCAST_OPS | {"Gemm"}:
            continue
        if attributes.get("broadcast") and "axis" in attributes:
            left_rank = ranks.get(node.input[0])
            operand = node.input[1]
            if left_rank is None or (operand not in constants and operand not in initializers):
                raise ModelFileError(
                    f"{source} (opset {default_opset(model)}): node {node.name or node.op_type} broadcasts with axis={attributes['axis']} "
                    "over a computed operand or an input of unknown rank, which the SDK cannot lift",
                    fix=f"re-export the model at opset {MIN_RUNTIME_OPSET} or later",
                )
            tensor = constants[operand].attribute[0].t if operand in constants else initializers[operand]
            array = numpy_helper.to_array(tensor)
            trailing = left_rank - int(attributes["axis"]) - array.ndim
            tensor.CopyFrom(numpy_helper.from_array(array.reshape(array.shape + (1,) * max(trailing, 0)), tensor.name))
        # numpy broadcasting now does what `axis` said: opset 7 semantics, so drop both legacy attributes.
        kept = [a for a in node.attribute if a.name not in ("axis", "broadcast")]
        del node.attribute[:]
        node.attribute.extend(kept)


def _known_ranks(model: Any) -> dict[str, int]:
    """Rank of each value: graph inputs, constants, then forward through shape-keeping ops."""
    onnx = require("onnx")
    ranks: dict[str, int] = {}
    for value in list(model.graph.input) + list(model.graph.value_info):
        if value.type.tensor_type.HasField("shape"):
            ranks[value.name] = len(value.type.tensor_type.shape.dim)
    for node in model.graph.node:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Constant":
            ranks[node.output[0]] = len(attributes["value"].dims)
        elif node.op_type == "Reshape" and "shape" in attributes:
            ranks[node.output[0]] = len(attributes["shape"])
        elif node.op_type in ("Flatten", "MatMul", "Gemm"):
            ranks[node.output[0]] = 2 if node.op_type != "MatMul" else ranks.get(node.input[0], 2)
        elif node.input and node.input[0] in ranks:
            # Conv, pooling, activations and elementwise ops keep the rank of their first input.
            ranks[node.output[0]] = ranks[node.input[0]]
    return ranks


def onnx_signature(model: Any) -> ModelSignature:
    """Inputs (minus initializers listed as inputs, as old exporters do) and outputs of the graph."""
    initializer_names = {tensor.name for tensor in model.graph.initializer}

    def info(value: Any) -> TensorInfo:
        tensor_type = value.type.tensor_type
        dims: list[int | None] = [int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor_type.shape.dim]
        return TensorInfo(value.name, dims, ELEMENT_TYPES.get(tensor_type.elem_type, f"type{tensor_type.elem_type}"))

    inputs = [info(value) for value in model.graph.input if value.name not in initializer_names]
    return ModelSignature(inputs, [info(value) for value in model.graph.output])


def parameter_count(model: Any) -> int:
    onnx = require("onnx")
    count = sum(int(np.prod(tensor.dims)) for tensor in model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    count += int(np.prod(onnx.helper.get_attribute_value(attribute).dims))
    return count


def load_onnx(path: Path) -> LoadedModel:
    """Read, check and (for opsets ONNX Runtime refuses) lift a .onnx file; the ModelProto is `.model`."""
    path = Path(path)
    model, external = read_onnx(path)
    notes = [f"weights read from external data {external}"] if external else []
    opset = default_opset(model)
    # Checked before lifting too: the legacy rewrites read attributes a well-formed node of that opset must have.
    check_onnx(model, str(path))
    if opset < MIN_RUNTIME_OPSET:
        model = lift_opset(model, str(path))
        notes.append(f"lifted from opset {opset} to opset {TARGET_OPSET}")
    return LoadedModel("onnx", path, model, onnx_signature(model), "onnx", parameter_count(model), notes=notes)
