"""ONNX Runtime quantization that survives real exports (PP-OCR, silero-vad, YOLO-style detectors).

What real exported models hit, and what this module does about each:
- `quant_pre_process` fails on many exports (symbolic shape inference asserts on a Concat or gives up): quantize
  the model without pre-processing instead, and say so;
- per-channel int8 needs `DequantizeLinear(axis)`, which only exists from opset 13: lift older models first;
- weights held in `Constant` nodes are invisible to the quantizer: move them to initializers;
- calibration with histograms (Entropy, Percentile) keeps every activation of every sample in memory inside ORT:
  calibrate in strides of a few samples (ORT's CalibStridedMinMax path merges histograms between strides), and turn
  a MemoryError into a message;
- a quantized artifact with no quantized compute op, or larger than its float source, is written with a warning;
- any exception raised inside ORT's quantization tools becomes one ConversionError (exit 6) with a fix.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edge_sdk._lazy import require
from edge_sdk.errors import ConversionError, EdgeSdkError, MissingDependencyError
from edge_sdk.staging import working_directory

# Samples per calibration stride: ORT holds every activation of a stride's samples at once.
MAX_SAMPLES_PER_STRIDE = 8
PER_CHANNEL_MIN_OPSET = 13


def warn(text: str, notes: list[str]) -> None:
    """Tell the user now (stderr, so --json stays clean) and keep it for the manifest."""
    notes.append(text)
    print(f"warning: {text}", file=sys.stderr)


def constants_to_initializers(model: Any) -> int:
    """Move tensors held in top-level `Constant` nodes into graph initializers; returns how many moved."""
    onnx = require("onnx")
    graph = model.graph
    moved = 0
    for node in list(graph.node):
        if node.op_type != "Constant" or len(node.attribute) != 1 or node.attribute[0].name != "value":
            continue
        tensor = onnx.TensorProto()
        tensor.CopyFrom(node.attribute[0].t)
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
        graph.node.remove(node)
        moved += 1
    return moved


def opset_of(model: Any) -> int:
    return max((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), default=0)


def lift_opset(model: Any, minimum: int, notes: list[str]) -> Any:
    """The model at opset >= `minimum` (unchanged when it already is, or when the version converter fails)."""
    onnx = require("onnx")
    current = opset_of(model)
    if current >= minimum:
        return model
    from onnx import version_converter

    try:
        lifted = version_converter.convert_version(model, minimum)
    except Exception as error:  # noqa: BLE001 - the converter raises bare RuntimeErrors and ValidationErrors
        warn(f"could not lift opset {current} to {minimum} for per-channel quantization ({type(error).__name__}: {error}); "
             "quantizing at the original opset", notes)
        return model
    onnx.checker.check_model(lifted)
    notes.append(f"lifted from opset {current} to {minimum}: per-channel DequantizeLinear needs an axis attribute")
    return lifted


def prepare_for_static(float_path: Path, workdir: Path, per_channel: bool, notes: list[str], progress: Any) -> Path:
    """The float model made ready for quantize_static: Constant weights as initializers, opset lifted for per-channel,
    then `quant_pre_process` where it works (its failure is reported and the un-preprocessed model used)."""
    onnx = require("onnx")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(str(float_path))
    moved = constants_to_initializers(model)
    if moved:
        notes.append(f"moved {moved} Constant node tensor(s) to initializers so that their weights are quantized")
    if per_channel:
        model = lift_opset(model, PER_CHANNEL_MIN_OPSET, notes)
    lifted = workdir / "lifted.onnx"
    onnx.save_model(model, str(lifted))
    prepared = workdir / "prepared.onnx"
    progress.message("quant_pre_process (shape inference, graph optimisation) ...")
    try:
        with working_directory(workdir):
            quant_pre_process(str(lifted.resolve()), str(prepared.resolve()))
        return prepared
    except Exception as error:  # noqa: BLE001 - symbolic shape inference raises AssertionError, Exception, KeyError...
        failure = f"{type(error).__name__}: {str(error)[:200] or 'symbolic shape inference'}"
    try:
        # Without symbolic shape inference the graph optimisation (BatchNorm fusion...) still runs.
        with working_directory(workdir):
            quant_pre_process(str(lifted.resolve()), str(prepared.resolve()), skip_symbolic_shape=True)
        warn(f"quant_pre_process failed ({failure}); pre-processed without symbolic shape inference instead", notes)
        return prepared
    except Exception as error:  # noqa: BLE001 - as above
        warn(f"quant_pre_process failed ({failure}; without symbolic shapes: {type(error).__name__}: {str(error)[:200]}); "
             "quantizing the model without pre-processing (no shape inference or graph fusion before calibration)", notes)
    return lifted


def stride_for(count: int, maximum: int = MAX_SAMPLES_PER_STRIDE) -> int:
    """The largest stride <= `maximum` that divides `count` (ORT requires the stride to divide the sample count)."""
    return next(size for size in range(min(maximum, count), 0, -1) if count % size == 0)


def strided_reader(samples: Callable[[list[int] | None], Any], indices: list[int], fit: Callable[[Any], dict[str, np.ndarray]], task: Any = None) -> Any:
    """A CalibrationDataReader over `indices` that ORT can read in ranges (`set_range`), so calibration holds the
    activations of one stride at a time. `samples(indices)` streams samples; `fit(sample)` makes the feeds."""
    from onnxruntime.quantization import CalibrationDataReader

    class StridedReader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.set_range(0, len(indices))

        def __len__(self) -> int:
            return len(indices)

        def set_range(self, start_index: int, end_index: int) -> None:
            self._samples = iter(samples(indices[start_index:end_index]))

        def get_next(self) -> dict[str, np.ndarray] | None:
            sample = next(self._samples, None)
            if sample is None:
                return None
            if task is not None:
                task.advance()
            return fit(sample)

        def rewind(self) -> None:
            self.set_range(0, len(indices))

    return StridedReader()


def run_quantizer(step: str, function: Callable[[], Any], fix: str) -> Any:
    """Run one ORT quantization call; any exception it raises becomes one ConversionError (exit 6)."""
    try:
        # ORT's calibrators print progress with print(): keep stdout for our own output (--json must parse).
        with contextlib.redirect_stdout(sys.stderr):
            return function()
    except EdgeSdkError:
        raise
    except MemoryError as error:
        raise ConversionError(f"{step} ran out of memory: {error}",
                              fix="use --calib-method MinMax, or fewer --calib-samples, or smaller --input-shape sizes") from error
    except Exception as error:  # noqa: BLE001 - ORT's quantization raises ValueError, RuntimeError, AssertionError, its own pybind errors
        raise ConversionError(f"{step} failed inside ONNX Runtime's quantization: {type(error).__name__}: {str(error)[:400]}", fix=fix) from error


def check_result(float_path: Path, artifact_path: Path, share: float, mode: str, notes: list[str]) -> None:
    """Warn (and record) when the quantized artifact quantized nothing or came out larger than the float model."""
    if share == 0.0:
        warn(f"the {mode} artifact has 0 % of its compute ops quantized: it runs in float (nothing this mode quantizes "
             "was found, or every candidate was excluded)", notes)
    float_size, artifact_size = float_path.stat().st_size, artifact_path.stat().st_size
    if artifact_size > float_size:
        warn(f"the {mode} artifact ({artifact_size} bytes) is larger than the float model ({float_size} bytes)", notes)


def to_fp16_checked(float_model: Any, target: Path, exclude_nodes: list[str], exclude_op_types: list[str], notes: list[str]) -> None:
    """fp16 weights and compute with float I/O, loaded by ONNX Runtime before it is written.

    onnxconverter-common can leave a graph ORT refuses (a Cast whose declared type no longer matches, an op with no
    fp16 kernel); the nodes ORT's message points at are then kept in float and the conversion tried again, a few
    times, before it fails with exit 6. `--exclude-nodes` / `--exclude-op-types` keep those nodes / op types in float.
    """
    onnx = require("onnx")
    ort = require("onnxruntime", "checking the fp16 model")
    try:
        from onnxconverter_common import float16
    except ImportError as error:
        raise MissingDependencyError(f"--quant fp16 for ONNX needs onnxconverter-common: {error}", fix="pip install 'edge-sdk[onnx]'") from error
    named_model = onnx.ModelProto()
    named_model.CopyFrom(float_model)
    for index, node in enumerate(named_model.graph.node):
        node.name = node.name or f"{node.op_type.lower()}_{index}"  # blocking works by node name
    kept_nodes = set(exclude_nodes)
    # A blocked op type gets Cast nodes around it, so Cast itself is kept in float by node name (blocking the type
    # makes onnxconverter-common wrap its own new Casts without end).
    kept_ops = set(exclude_op_types) - {"Cast"}
    kept_nodes |= {node.name for node in named_model.graph.node if node.op_type == "Cast" and "Cast" in exclude_op_types}
    for _ in range(4):
        fresh = onnx.ModelProto()
        fresh.CopyFrom(named_model)  # convert_float_to_float16 changes the model it is given; each try starts from float
        converted = run_quantizer("fp16 conversion", lambda: float16.convert_float_to_float16(
            fresh, keep_io_types=True, op_block_list=sorted(set(float16.DEFAULT_OP_BLOCK_LIST) | kept_ops), node_block_list=sorted(kept_nodes),
        ), fix="keep the failing nodes in float with --exclude-nodes / --exclude-op-types")
        try:
            ort.InferenceSession(converted.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - ORT raises its own pybind classes (Fail, InvalidGraph, NotImplemented...)
            nodes = _nodes_named_in(str(error), named_model) - kept_nodes
            if not nodes:
                raise ConversionError(f"ONNX Runtime cannot load the fp16 model: {str(error)[:400]}",
                                      fix="keep the failing nodes in float with --exclude-nodes / --exclude-op-types, or use fp32") from error
            kept_nodes |= nodes
            warn(f"fp16: kept {', '.join(sorted(nodes))} in float, as ONNX Runtime refused the fp16 graph ({str(error)[:160]})", notes)
            continue
        onnx.save_model(converted, str(target))
        return
    raise ConversionError(f"ONNX Runtime still cannot load the fp16 model after keeping {', '.join(sorted(kept_nodes))} in float",
                          fix="use fp32, or keep more nodes in float with --exclude-nodes / --exclude-op-types")


def _nodes_named_in(message: str, model: Any) -> set[str]:
    """Names of the nodes an ORT load error points at: by node name, by an op type it names ("Optype (Add)"), or
    as the producer of a tensor it names ("output arg (c) of node ()": the Cast that produces `c`)."""
    import re

    nodes = set()
    tensors = set(re.findall(r"arg \(([^)]*)\)", message))
    for node in model.graph.node:
        if node.name and re.search(rf"\({re.escape(node.name)}\)", message):
            nodes.add(node.name)
        if tensors & set(node.output):
            nodes.add(node.name)
    if not nodes:
        op_types = {node.op_type for node in model.graph.node if re.search(rf"\({re.escape(node.op_type)}\)", message)}
        nodes = {node.name for node in model.graph.node if node.op_type in op_types}
    return nodes


def resolve_node_names(models: list[Any], names: list[str]) -> list[str]:
    """`--exclude-nodes` names as node names of any of `models` (ModelProtos or paths): a node name stays, a tensor
    name becomes the node that produces it; an unknown name is refused (exit 2) instead of silently ignored."""
    import difflib

    from edge_sdk.errors import UsageError

    if not names:
        return []
    onnx = require("onnx")
    graphs = [(onnx.load(str(model), load_external_data=False) if isinstance(model, (str, Path)) else model).graph for model in models]
    nodes = {node.name for graph in graphs for node in graph.node if node.name}
    producers = {output: node.name for graph in graphs for node in graph.node if node.name for output in node.output}
    resolved = []
    for name in names:
        if name in nodes:
            resolved.append(name)
        elif name in producers:
            resolved.append(producers[name])
        else:
            close = difflib.get_close_matches(name, sorted(nodes | set(producers)), n=3)
            raise UsageError(f"--exclude-nodes {name!r} is neither a node nor a tensor of the model",
                             fix=f"did you mean {', '.join(close)}?" if close else "list the node names with `edge-sdk inspect MODEL.onnx --json` or `edge-sdk debug`")
    return sorted(set(resolved), key=resolved.index)
