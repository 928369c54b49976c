"""Refuse model files whose loading would run code they carry, before any framework reads them.

The checks are structural: they read the model's own description (an `.h5`'s `model_config`, a SavedModel's graph)
and look at layer classes and op types, never at names of dangerous functions. `--trust-model` (the one trust
flag) lets a user load such a file where they trust its origin; `trusting_model_code()` sets it for a block.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge_sdk.errors import ModelFileError

TRUST_FLAG = "--trust-model"
_TRUSTED: contextvars.ContextVar[bool] = contextvars.ContextVar("edge_sdk_trust_model", default=False)

# tf_keras classes whose config holds Python bytecode (marshal) or a function looked up at load time.
CODE_CARRYING_LAYERS = {"Lambda", "DropoutWrapper", "ResidualWrapper", "DeviceWrapper"}
# TensorFlow ops that call back into the Python process that built the graph (tf.py_function, tf.numpy_function).
PYTHON_CALLBACK_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


@contextlib.contextmanager
def trusting_model_code(trusted: bool = True) -> Iterator[None]:
    """Within the block, model files that carry code are loaded (as `--trust-model` does)."""
    token = _TRUSTED.set(bool(trusted))
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def model_code_trusted() -> bool:
    return _TRUSTED.get()


def check_model_file(path: Path, kind: str) -> None:
    """The checks that need no framework, for a model only named so far (a bench's reference): `.h5` configs."""
    if kind == "h5":
        from edge_sdk._lazy import require

        require("h5py", f"reading {path}")
        check_h5_model(path)


def check_h5_model(path: Path) -> None:
    """An `.h5` saved by tf_keras: refuse code-carrying layers (unless trusted) and files saved by Keras 3."""
    keras_version, config_text = _read_h5_attributes(path)
    if config_text is None:
        raise ModelFileError(f"{path} holds weights only (no model_config): there is no model to load",
                             fix="save the whole model with model.save('model.h5'), not model.save_weights")
    if keras_version and keras_version.split(".")[0] not in ("2", "1"):
        raise ModelFileError(f"{path} was saved by Keras {keras_version} in the legacy .h5 format, which this SDK reads with tf_keras (Keras 2) only",
                             fix="save it with Keras 3's own format: model.save('model.keras')")
    try:
        config = json.loads(config_text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ModelFileError(f"{path}: its model_config is not valid JSON: {error}", fix="re-save the model with model.save('model.h5')") from error
    if model_code_trusted():
        return
    found = next(_code_carrying_layers(config), None)
    if found is not None:
        layer_name, class_name = found
        raise ModelFileError(
            f"{path}: layer {layer_name!r} ({class_name}) carries Python code, which loading the model would run",
            fix=f"rebuild the model without {class_name} layers, or pass {TRUST_FLAG} if you trust where the file comes from",
        )


# Read in a child process: a damaged HDF5 file can send the HDF5 library into a loop that no signal interrupts
# (found by tests/fuzz/test_models_and_manifests.py); tf_keras would hang on it the same way.
H5_READ_TIMEOUT_S = 60.0
_READ_H5_ATTRIBUTES = """
import json, sys
import h5py
try:
    with h5py.File(sys.argv[1], "r") as handle:
        values = [handle.attrs.get(key) for key in ("keras_version", "model_config")]
except (OSError, ValueError, KeyError, RuntimeError, TypeError) as error:
    sys.stderr.write(f"{type(error).__name__}: {error}")
    sys.exit(3)
print(json.dumps([value.decode("utf-8", "replace") if isinstance(value, bytes) else (None if value is None else str(value)) for value in values]))
"""


def _read_h5_attributes(path: Path) -> tuple[str | None, str | None]:
    """(keras_version, model_config) of an .h5 file, read by h5py in a child process with a time limit."""
    import subprocess
    import sys

    try:
        done = subprocess.run([sys.executable, "-c", _READ_H5_ATTRIBUTES, str(path)], capture_output=True, text=True, timeout=H5_READ_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ModelFileError(f"{path}: reading its HDF5 metadata did not finish within {H5_READ_TIMEOUT_S:g} s; the file is damaged",
                             fix="re-save the model with model.save('model.h5')") from None
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit status {done.returncode}"
        raise ModelFileError(f"{path} is not a readable HDF5 file: {reason}", fix="re-save the model with model.save('model.h5')")
    try:
        keras_version, config_text = json.loads(done.stdout)
    except (ValueError, TypeError) as error:
        raise ModelFileError(f"{path}: its HDF5 attributes cannot be read: {error}", fix="re-save the model with model.save('model.h5')") from error
    return keras_version, config_text


def _code_carrying_layers(config: Any, layer_name: str | None = None, depth: int = 0) -> Iterator[tuple[str, str]]:
    """(layer name, class) of every part of a Keras config that deserializes code, depth first."""
    if depth > 200:  # deeper than any real model: refuse rather than recurse without end
        yield (layer_name or "?", "a config nested too deeply")
        return
    if isinstance(config, dict):
        class_name = config.get("class_name")
        class_name = class_name if isinstance(class_name, str) else None
        inner = config.get("config")
        name = (inner.get("name") if isinstance(inner, dict) else None) or config.get("name") or layer_name
        if class_name in CODE_CARRYING_LAYERS or class_name == "__lambda__" or config.get("function_type") == "lambda":
            yield (str(name or "?"), str(class_name or "a lambda"))
            return
        for value in config.values():
            yield from _code_carrying_layers(value, name if isinstance(name, str) else layer_name, depth + 1)
    elif isinstance(config, list):
        for value in config:
            yield from _code_carrying_layers(value, layer_name, depth + 1)


def check_saved_model(path: Path) -> None:
    """A SavedModel folder: refuse graphs with Python callback ops, which cannot run outside the saving process."""
    from edge_sdk._lazy import require

    require("tensorflow", f"loading the SavedModel {path}")
    from tensorflow.core.protobuf import saved_model_pb2
    from google.protobuf.message import DecodeError

    pb = Path(path) / "saved_model.pb"
    if not pb.is_file():
        return  # a .pbtxt SavedModel: TensorFlow reads and checks it
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(pb.read_bytes())
    except (DecodeError, OSError) as error:
        raise ModelFileError(f"{pb} is not a valid SavedModel protobuf: {error}", fix="re-export it with model.export(dir)") from error
    for meta_graph in proto.meta_graphs:
        node_lists = [meta_graph.graph_def.node] + [function.node_def for function in meta_graph.graph_def.library.function]
        for nodes in node_lists:
            for node in nodes:
                if node.op in PYTHON_CALLBACK_OPS:
                    raise ModelFileError(
                        f"SavedModel {path}: op {node.name!r} ({node.op}, from tf.py_function / tf.numpy_function) calls Python code "
                        "that is not in the file; it cannot run here or on a device",
                        fix="rebuild the model with TensorFlow ops instead of tf.py_function / tf.numpy_function",
                    )
