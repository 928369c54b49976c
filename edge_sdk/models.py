"""Model intake: recognise a model file, load it lazily, and read its input/output signature.

Loaders are small functions; nothing heavy is imported until a model of that kind is loaded.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk._lazy import is_available, require
from edge_sdk.errors import ModelFileError, UsageError
from edge_sdk.formats import FORMATS, format_for_suffix
from edge_sdk.model_safety import check_h5_model, check_saved_model

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# Errors that Keras / TensorFlow raise for a model file they cannot read.
_LOAD_ERRORS = (ValueError, OSError, TypeError, KeyError, AttributeError, IndexError, zipfile.BadZipFile, ImportError)


@dataclass
class TensorInfo:
    """One input or output: name, shape (None for a dynamic dimension), dtype."""

    name: str
    shape: list[int | None]
    dtype: str
    quantization: dict[str, float | int] | None = None

    def to_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"name": self.name, "shape": self.shape, "dtype": self.dtype}
        if self.quantization is not None:
            payload["quantization"] = self.quantization
        return payload


@dataclass
class ModelSignature:
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs]}


@dataclass
class LoadedModel:
    """A model in memory plus what the SDK learned about it while loading."""

    kind: str
    path: Path
    model: Any
    signature: ModelSignature
    framework: str
    parameter_count: int = 0
    quantization_aware: bool = False
    notes: list[str] = field(default_factory=list)


def detect_model_kind(path: Path) -> str:
    """'keras', 'h5', 'savedmodel', 'tflite', 'onnx', 'pt2' or 'torchscript', from the file's content, not only its name."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model {path} does not exist", fix="check the path")
    if path.is_dir():
        if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists():
            return "savedmodel"
        raise ModelFileError(f"{path} is a folder but not a SavedModel (no saved_model.pb)", fix="give a model file or a SavedModel folder")
    if not path.is_file():  # a FIFO would block the read below forever; a device or socket is no model either
        raise ModelFileError(f"model {path} is not a regular file (a FIFO, socket or device)", fix="give the model file itself")
    if not os.access(path, os.R_OK):
        raise ModelFileError(f"model {path} is not readable", fix="check its permissions")
    with open(path, "rb") as handle:
        head = handle.read(16)
    suffix = path.suffix.lower()
    if suffix == ".tflite" or head[4:8] == b"TFL3":
        if head[4:8] != b"TFL3":
            raise ModelFileError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier)", fix="re-export the model")
        return "tflite"
    if suffix in (".h5", ".hdf5") or head.startswith(HDF5_MAGIC):
        if not head.startswith(HDF5_MAGIC) and zipfile.is_zipfile(path):
            raise ModelFileError(f"{path} is a Keras 3 .keras archive, not an HDF5 file (renamed?)", fix=f"rename it to {path.with_suffix('.keras').name}")
        if not head.startswith(HDF5_MAGIC):
            raise ModelFileError(f"{path} is not an HDF5 file", fix="re-save the model with model.save('model.h5')")
        return "h5"
    if suffix == ".keras":
        if not zipfile.is_zipfile(path):
            raise ModelFileError(f"{path} is not a valid .keras archive (truncated or corrupt)", fix="re-save the model with model.save('model.keras')")
        return "keras"
    if suffix == ".onnx":
        return "onnx"
    if suffix in FORMATS["tensorrt"].suffixes:
        return "tensorrt"  # a serialized TensorRT engine: opaque bytes, checked by its manifest and TensorRT itself
    if suffix in (".pt2", ".pt", ".pth", ".ts"):
        # PyTorch: .pt2 is an ExportedProgram (torch.export.save), the others TorchScript (torch.jit.save).
        if not zipfile.is_zipfile(path):
            raise ModelFileError(f"{path} is not a PyTorch archive (truncated or a pickle?)", fix="save it with torch.export.save or torch.jit.save")
        return "pt2" if suffix == ".pt2" else "torchscript"
    registered = format_for_suffix(suffix)
    if registered is not None:  # a format added to the table (its own files, checked by its runner)
        return registered.name
    raise ModelFileError(
        f"{path} is not a model file this SDK reads (.keras, .h5, SavedModel folder, .tflite, .onnx, .pt2, TorchScript .pt)",
        fix="give one of those formats",
    )


def load_model(path: Path) -> LoadedModel:
    """Load a Keras 3, tf_keras .h5 or SavedModel model with its signature."""
    kind = detect_model_kind(path)
    loaders = {"keras": load_keras3, "h5": load_tf_keras_h5, "savedmodel": load_saved_model}
    if kind not in loaders:
        raise ModelFileError(f"{path} is a {kind} model, not a Keras or SavedModel model", fix="give the float source model")
    return loaders[kind](Path(path))


def load_keras3(path: Path) -> LoadedModel:
    """A Keras 3 `.keras` archive."""
    keras = require("keras", f"loading {path}")
    try:
        model = keras.models.load_model(path, compile=False)
    except _LOAD_ERRORS as error:
        raise ModelFileError(f"cannot load Keras model {path}: {type(error).__name__}: {error}", fix="check the file is a complete .keras archive saved by Keras 3") from error
    return LoadedModel("keras", path, model, _keras_signature(model, path), "keras3", _parameter_count(model))


def load_tf_keras_h5(path: Path) -> LoadedModel:
    """A tf_keras (Keras 2) `.h5`, including tfmot-pruned (wrappers stripped) and QAT models."""
    tf_keras = require("tf_keras", f"loading the Keras 2 model {path}")
    require("h5py", f"reading {path}")
    check_h5_model(path)  # before tf_keras reads it: a Lambda layer's code would run while loading
    # tfmot is optional: without it, plain Keras 2 models still load; wrapped ones fail clearly.
    tfmot = require("tensorflow_model_optimization") if is_available("tensorflow_model_optimization") else None
    try:
        if tfmot is not None:
            with tfmot.sparsity.keras.prune_scope(), tfmot.quantization.keras.quantize_scope(), tfmot.clustering.keras.cluster_scope():
                model = tf_keras.models.load_model(path, compile=False)
        else:
            model = tf_keras.models.load_model(path, compile=False)
    except _LOAD_ERRORS as error:
        raise ModelFileError(f"cannot load Keras 2 model {path}: {type(error).__name__}: {error}", fix="check the file is a complete .h5 saved by tf_keras") from error
    notes = []
    if tfmot is not None and _has_layer_type(model, "PruneLowMagnitude"):
        model = tfmot.sparsity.keras.strip_pruning(model)
        notes.append("stripped tfmot pruning wrappers")
    if tfmot is not None and _has_layer_type(model, "ClusterWeights"):
        model = tfmot.clustering.keras.strip_clustering(model)
        notes.append("stripped tfmot clustering wrappers")
    quantization_aware = _has_layer_type(model, "QuantizeWrapperV2") or _has_layer_type(model, "QuantizeWrapper")
    if quantization_aware:
        notes.append("quantization-aware trained (tfmot quantize wrappers)")
    loaded = LoadedModel("h5", path, model, _keras_signature(model, path), "tf_keras", _parameter_count(model), quantization_aware, notes)
    return loaded


def load_saved_model(path: Path) -> LoadedModel:
    """A SavedModel folder, called through its `serving_default` signature."""
    tf = require("tensorflow", f"loading the SavedModel {path}")
    check_saved_model(path)
    try:
        loaded = tf.saved_model.load(str(path))
    except _LOAD_ERRORS + (tf.errors.OpError,) as error:
        raise ModelFileError(f"cannot load SavedModel {path}: {type(error).__name__}: {error}", fix="re-export it with model.export(dir)") from error
    signatures = getattr(loaded, "signatures", {})
    if "serving_default" not in signatures:
        raise ModelFileError(f"SavedModel {path} has no 'serving_default' signature (has: {list(signatures)})", fix="export it with model.export(dir) or a serving signature")
    function = signatures["serving_default"]
    _, input_specs = function.structured_input_signature
    inputs = [TensorInfo(name, _dims(spec.shape), spec.dtype.name) for name, spec in sorted(input_specs.items())]
    outputs = [TensorInfo(name, _dims(spec.shape), spec.dtype.name) for name, spec in sorted(function.structured_outputs.items())]
    parameter_count = sum(int(v.shape.num_elements() or 0) for v in getattr(loaded, "variables", []))
    return LoadedModel("savedmodel", path, loaded, ModelSignature(inputs, outputs), "savedmodel", parameter_count)


def _keras_signature(model: Any, path: Path) -> ModelSignature:
    try:
        model_inputs = list(model.inputs)
        model_outputs = list(model.outputs)
    except (AttributeError, ValueError) as error:
        raise ModelFileError(f"model {path} has no defined inputs (a subclassed model that was never built?)", fix="build it with keras.Input(...) before saving") from error
    inputs = [TensorInfo(_tensor_name(t, f"input_{i}"), _dims(t.shape), _dtype_name(t.dtype)) for i, t in enumerate(model_inputs)]
    outputs = [TensorInfo(_tensor_name(t, f"output_{i}"), _dims(t.shape), _dtype_name(t.dtype)) for i, t in enumerate(model_outputs)]
    return ModelSignature(inputs, outputs)


def _tensor_name(tensor: Any, default: str) -> str:
    name = getattr(tensor, "name", None) or default
    return str(name).split(":")[0]


def _dtype_name(dtype: Any) -> str:
    return str(getattr(dtype, "name", dtype))


def _dims(shape: Any) -> list[int | None]:
    if hasattr(shape, "as_list"):
        shape = shape.as_list()
    return [None if d is None else int(d) for d in shape]


def _parameter_count(model: Any) -> int:
    return int(sum(int(_num_elements(w.shape)) for w in model.weights))


def _num_elements(shape: Any) -> int:
    total = 1
    for dim in _dims(shape):
        total *= dim or 0
    return total


def _has_layer_type(model: Any, type_name: str) -> bool:
    return any(type(layer).__name__ == type_name for layer in getattr(model, "layers", []))


def parse_input_shapes(texts: list[str] | None) -> dict[str, list[int]]:
    """`--input-shape 1,28,28,1` (the only input) or `--input-shape NAME:1,28,28,1` per input."""
    shapes: dict[str, list[int]] = {}
    for text in texts or []:
        name, _, dims = text.rpartition(":")
        try:
            shapes[name] = [int(d) for d in dims.split(",")]
        except ValueError as error:
            raise UsageError(f"--input-shape {text!r} must look like 1,28,28,1 or NAME:1,28,28,1") from error
        if any(d <= 0 for d in shapes[name]):
            raise UsageError(f"--input-shape {text!r} must have positive sizes")
    return shapes


def resolve_input_shapes(signature: ModelSignature, overrides: dict[str, list[int]] | None, source: Path) -> list[tuple[str, list[int]]]:
    """Concrete input shapes: a dynamic batch becomes 1; any other dynamic dimension needs --input-shape."""
    overrides = dict(overrides or {})
    known = {t.name for t in signature.inputs} | ({""} if len(signature.inputs) == 1 else set())
    if set(overrides) - known:
        raise UsageError(f"--input-shape names unknown inputs {sorted(set(overrides) - known)}; the model's inputs are {[t.name for t in signature.inputs]}")
    resolved = []
    for index, tensor in enumerate(signature.inputs):
        override = overrides.pop(tensor.name, None)
        if override is None and "" in overrides and len(signature.inputs) == 1:
            override = overrides.pop("")
        if override is not None:
            if len(override) != len(tensor.shape) or any(d is not None and d != o for d, o in zip(tensor.shape[1:], override[1:])):
                raise UsageError(f"--input-shape {override} does not fit input {tensor.name!r} of {source}, whose shape is {tensor.shape}")
            resolved.append((tensor.name, list(override)))
            continue
        dynamic = [axis for axis, d in enumerate(tensor.shape) if d is None and axis != 0]
        if dynamic:
            example = ",".join("1" if d is None and axis == 0 else ("N" if d is None else str(d)) for axis, d in enumerate(tensor.shape))
            raise UsageError(
                f"input {tensor.name!r} of {source} has dynamic dimension(s) {dynamic} in shape {tensor.shape}",
                fix=f"give a concrete shape: --input-shape {tensor.name}:{example} (replace N)",
            )
        resolved.append((tensor.name, [1 if (d is None and axis == 0) else int(d) for axis, d in enumerate(tensor.shape)]))
    return resolved
