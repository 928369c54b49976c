"""`edge-sdk inspect` of a Keras model file (.h5 from tf_keras, .keras from Keras 3): its inputs and outputs and its
layer counts, read from the model's config (JSON) without loading its weights or running code from the file.

The config is read as data: an .h5's `model_config` attribute by h5py in a child process (edge_sdk.model_safety),
a .keras archive's config.json with zipfile. The model_safety rules apply first: layers that carry Python code
(Lambda...) are refused unless --trust-model. Input shapes and dtypes are in the config; output shapes are not, so
they come from the model built from that config by the Keras that reads the file (library layers only, no weights);
without that Keras, or for custom layers it does not know, outputs are listed with unknown shapes and a note.
"""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from edge_sdk.errors import ModelFileError

# A config.json larger than this is no model description (a zip bomb, or not a Keras archive).
MAX_CONFIG_BYTES = 64 * 1024 * 1024
_CONTAINERS = ("Functional", "Model", "Sequential")


def inspect_keras_file(path: Path, kind: str) -> dict[str, Any]:
    """{framework, keras_version, io: {inputs, outputs}, ops (layer classes and counts), op_count, layer_count,
    parameters, notes} of an .h5 (`kind` 'h5') or .keras (`kind` 'keras') file."""
    path = Path(path)
    if kind == "h5":
        from edge_sdk.model_safety import _read_h5_attributes, check_h5_model

        check_h5_model(path)  # weights-only files, Keras 3 .h5 and code-carrying layers (without --trust-model) refused
        keras_version, config_text = _read_h5_attributes(path)
        framework = "tf_keras"
    else:
        keras_version, config_text = _read_keras_archive(path)
        framework = "keras3"
    try:
        config = json.loads(config_text or "")
    except (json.JSONDecodeError, RecursionError) as error:
        raise ModelFileError(f"{path}: its model config is not valid JSON: {error}", fix="re-save the model") from error
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ModelFileError(f"{path}: its model config describes no model", fix="re-save the whole model with model.save(...)")
    if kind == "keras":
        _refuse_code(config, path)
    layers = list(_layers(config))
    counts = Counter(str(layer.get("class_name")) for layer in layers)
    notes: list[str] = []
    outputs, parameters = _built_outputs(config_text or "", framework, notes)
    return {
        "framework": framework,
        "keras_version": keras_version,
        "model_class": config.get("class_name"),
        "io": {"inputs": _inputs(config), "outputs": outputs if outputs is not None else _output_names(config)},
        "ops": dict(sorted(counts.items())),
        "op_count": sum(counts.values()),
        "layer_count": sum(counts.values()),
        "parameters": parameters,
        "notes": notes,
    }


def _read_keras_archive(path: Path) -> tuple[str | None, str]:
    """(keras_version, config.json text) of a .keras zip archive, read as data."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise ModelFileError(f"{path} is a zip archive without config.json: not a Keras 3 .keras file", fix="re-save the model with model.save('model.keras')")
            if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                raise ModelFileError(f"{path}: its config.json is larger than {MAX_CONFIG_BYTES // 2**20} MB", fix="re-save the model with model.save('model.keras')")
            config_text = archive.read("config.json").decode("utf-8", "replace")
            metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ModelFileError(f"{path} is not a readable .keras archive: {error}", fix="re-save the model with model.save('model.keras')") from error
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    return (str(version) if version is not None else None), config_text


def _refuse_code(config: dict[str, Any], path: Path) -> None:
    """The model_safety rule for .keras configs: a layer that carries Python code is refused unless --trust-model."""
    from edge_sdk.model_safety import TRUST_FLAG, _code_carrying_layers, model_code_trusted

    if model_code_trusted():
        return
    found = next(_code_carrying_layers(config), None)
    if found is not None:
        layer_name, class_name = found
        raise ModelFileError(f"{path}: layer {layer_name!r} ({class_name}) carries Python code, which loading the model would run",
                             fix=f"rebuild the model without {class_name} layers, or pass {TRUST_FLAG} if you trust where the file comes from")


def _layers(config: dict[str, Any], depth: int = 0) -> list[dict[str, Any]]:
    """Every layer of the model, nested models opened (a nested model counts as its layers, not as one)."""
    found: list[dict[str, Any]] = []
    for layer in (config.get("config") or {}).get("layers") or []:
        if not isinstance(layer, dict):
            continue
        if layer.get("class_name") in _CONTAINERS and depth < 50:
            found.extend(_layers(layer, depth + 1))
        elif layer.get("class_name") != "InputLayer":
            found.append(layer)
    return found


def _dtype(value: Any) -> str:
    if isinstance(value, dict):  # Keras 3: {"class_name": "DTypePolicy", "config": {"name": "float32"}}
        value = (value.get("config") or {}).get("name")
    return str(value or "float32")


def _inputs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Inputs from the InputLayers (Keras 3 `batch_shape`, tf_keras `batch_input_shape`), or a Sequential's first layer."""
    layers = [layer for layer in (config.get("config") or {}).get("layers") or [] if isinstance(layer, dict)]
    inputs = []
    candidates = [layer for layer in layers if layer.get("class_name") == "InputLayer"] or layers[:1]
    for layer in candidates:
        inner = layer.get("config") or {}
        shape = inner.get("batch_shape") or inner.get("batch_input_shape")
        if shape is None:
            continue
        inputs.append({"name": str(inner.get("name") or layer.get("name")), "shape": [None if d is None else int(d) for d in shape], "dtype": _dtype(inner.get("dtype"))})
    return inputs


def _output_names(config: dict[str, Any]) -> list[dict[str, Any]]:
    inner = config.get("config") or {}
    names = [entry[0] for entry in inner.get("output_layers") or [] if isinstance(entry, list) and entry]
    if not names:
        layers = [layer for layer in inner.get("layers") or [] if isinstance(layer, dict)]
        names = [str((layers[-1].get("config") or {}).get("name") or layers[-1].get("name"))] if layers else []
    return [{"name": str(name), "shape": None, "dtype": "?"} for name in names]


def _safe_mode_scope(module_name: str) -> Any:
    """Keras' own safe mode, lifted only under --trust-model (this SDK refused code-carrying layers before)."""
    import contextlib
    import importlib

    from edge_sdk.model_safety import model_code_trusted

    if not model_code_trusted():
        return contextlib.nullcontext()
    try:
        return importlib.import_module(f"{module_name}.src.saving.serialization_lib").SafeModeScope(safe_mode=False)
    except (ImportError, AttributeError):  # another Keras layout: its safe mode stays on and says so in the notes
        return contextlib.nullcontext()


def _built_outputs(config_text: str, framework: str, notes: list[str]) -> tuple[list[dict[str, Any]] | None, int | None]:
    """(outputs with shapes and dtypes, parameter count) of the model built from its config, without weights."""
    import importlib

    module_name = "tf_keras" if framework == "tf_keras" else "keras"
    try:
        keras = importlib.import_module(module_name)
    except ImportError:
        notes.append(f"output shapes unknown: {module_name} is not installed here")
        return None, None
    try:
        with _safe_mode_scope(module_name):
            model = keras.models.model_from_json(config_text)
    except Exception as error:  # noqa: BLE001 - Keras raises anything from a config it cannot build (custom layers)
        notes.append(f"output shapes unknown: {module_name} cannot build the model from its config ({type(error).__name__}: {str(error)[:200]})")
        return None, None
    names = list(getattr(model, "output_names", None) or [])
    outputs = []
    for index, tensor in enumerate(model.outputs):
        shape = tensor.shape.as_list() if hasattr(tensor.shape, "as_list") else list(tensor.shape)
        outputs.append({"name": str(names[index] if index < len(names) else getattr(tensor, "name", f"output_{index}")).split(":")[0],
                        "shape": [None if d is None else int(d) for d in shape], "dtype": _dtype(getattr(tensor.dtype, "name", tensor.dtype))})
    return outputs, int(model.count_params())
