"""`convert --input-shape NAME:DIMS`: the artifact is written with those dims fixed, not only converted at them.

The shapes a conversion resolves (edge_sdk.models.resolve_input_shapes) make a dynamic batch 1 even when the user gave
none; only the inputs the user named are fixed in the artifact. ONNX graphs get their input dims rewritten here and
their inner shapes inferred again; TFLite from Keras / SavedModel is traced as a concrete function at those shapes
(converters.tflite.make_converter). The manifest records which dims `--input-shape` fixed (`input_shapes_fixed`).
"""

from __future__ import annotations

from typing import Any

from edge_sdk._lazy import require
from edge_sdk.errors import ConversionError

FIXED_BY = "--input-shape"


def user_fixed_shapes(shapes: list[tuple[str, list[int]]], given: dict[str, list[int]] | None) -> dict[str, list[int]]:
    """The resolved shapes of the inputs the user named in `given` (the name '' stands for the only input)."""
    given = given or {}
    if not given:
        return {}
    return {name: list(shape) for name, shape in shapes if name in given or ("" in given and len(shapes) == 1)}


def fixed_record(declared: dict[str, list[int | None]], fixed: dict[str, list[int]]) -> dict[str, Any]:
    """What goes in the manifest: per fixed input its shape, the shape the source declared, and what fixed it."""
    return {name: {"shape": shape, "source_shape": declared.get(name), "fixed_by": FIXED_BY} for name, shape in fixed.items()}


def fix_onnx_input_dims(model: Any, fixed: dict[str, list[int]], where: str) -> Any:
    """`model` (an onnx ModelProto) with the named graph inputs at the given dims and every inner shape inferred again.

    Symbolic dims left in value_info or the outputs would disagree with the new inputs, so they are dropped and
    shape inference fills them from the fixed inputs."""
    onnx = require("onnx", "fixing ONNX input dims")
    graph = model.graph
    for graph_input in graph.input:
        shape = fixed.get(graph_input.name)
        if shape is None:
            continue
        dims = graph_input.type.tensor_type.shape.dim
        if len(dims) != len(shape):  # resolve_input_shapes checked the rank; a graph that disagrees is a broken file
            raise ConversionError(f"input {graph_input.name!r} of {where} has rank {len(dims)}, --input-shape gives {shape}")
        for dim, size in zip(dims, shape):
            dim.Clear()
            dim.dim_value = int(size)
    del graph.value_info[:]
    for output in graph.output:
        for dim in output.type.tensor_type.shape.dim:
            if not (dim.HasField("dim_value") and dim.dim_value > 0):
                dim.Clear()  # unknown (a dim_param, or -1 as Paddle exports write): inference gives it a size where it can
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as error:  # noqa: BLE001 - onnx raises InferenceError and friends from its C++ checker
        raise ConversionError(f"ONNX shape inference fails on {where} with inputs {fixed}: {type(error).__name__}: {error}",
                              fix="give --input-shape dims the model supports (see `edge-sdk inspect`)") from error


def check_loads_in_onnxruntime(path: Any, where: str) -> dict[str, list[int | None]]:
    """The rewritten graph must load in ONNX Runtime before anything is quantized from it; returns the output shapes
    ONNX Runtime infers (None where still dynamic)."""
    ort = require("onnxruntime", "checking an ONNX graph")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - ORT raises its own pybind classes
        if type(error).__module__.split(".")[0] != "onnxruntime":
            raise
        raise ConversionError(f"ONNX Runtime cannot load {where} with its input dims fixed: {error}",
                              fix="give --input-shape dims the model supports, or convert without --input-shape") from error
    return {node.name: [d if isinstance(d, int) and d > 0 else None for d in node.shape] for node in session.get_outputs()}


def set_output_dims(model: Any, shapes: dict[str, list[int | None]]) -> bool:
    """Write the output sizes ONNX Runtime inferred into graph outputs whose dims are unknown (onnx's own shape
    inference does not fill graph outputs); True when any changed."""
    changed = False
    for output in model.graph.output:
        sizes = shapes.get(output.name) or []
        dims = output.type.tensor_type.shape.dim
        if len(dims) != len(sizes):
            continue
        for dim, size in zip(dims, sizes):
            if size is not None and not (dim.HasField("dim_value") and dim.dim_value > 0) and not dim.HasField("dim_param"):
                dim.dim_value = size
                changed = True
    return changed
