"""Sources -> an ONNX ModelProto: `keras_to_onnx` (Keras 3, tf_keras, SavedModel via tf2onnx) and
`torch_to_onnx` (nn.Module, `module:factory` spec, .pt2 ExportedProgram, TorchScript).

tf2onnx 1.17's `from_keras` fails on Keras 3; `from_function` on a traced tf.function works for
Keras 3, tf_keras and SavedModel signatures alike. `torch.onnx.export` (dynamo) writes weights to
MODEL.onnx.data beside the model; the ONNX converter keeps them as external data of the artifact.
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_sdk._lazy import require
from edge_sdk.errors import ConversionError, ModelFileError, UsageError
from edge_sdk.loaders.torch_factory import module_from_factory
from edge_sdk.models import LoadedModel, load_model

ONNX_OPSET = 17
_FACTORY_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
TORCH_KINDS = ("pt2", "torchscript")


def is_factory_spec(text: Any) -> bool:
    """True for a `package.module:factory` string that is not an existing file."""
    return isinstance(text, str) and bool(_FACTORY_SPEC.match(text)) and not Path(text).exists()


def keras_to_onnx(loaded: LoadedModel, shapes: list[tuple[str, list[int]]]) -> Any:
    """A Keras 3 / tf_keras / SavedModel model as ONNX (float32, dynamic batch)."""
    tf = require("tensorflow", "Keras to ONNX")
    tf2onnx = require("tf2onnx", "Keras to ONNX")
    specs = [tf.TensorSpec([None, *shape[1:]], tf.float32, name=name) for name, shape in shapes]
    if loaded.framework == "savedmodel":
        signature = loaded.model.signatures["serving_default"]
        output_names = [t.name for t in loaded.signature.outputs]
        names = [name for name, _ in shapes]

        def call(*args: Any) -> Any:
            result = signature(**dict(zip(names, args)))
            return [result[name] for name in output_names]
    else:
        model = loaded.model

        def call(*args: Any) -> Any:
            return model(list(args) if len(args) > 1 else args[0], training=False)

    function = tf.function(call, input_signature=specs)
    try:
        proto, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=ONNX_OPSET)
    except (ValueError, RuntimeError, TypeError, KeyError) as error:
        raise ConversionError(f"tf2onnx could not convert {loaded.path}: {type(error).__name__}: {error}", fix="check every layer has an ONNX equivalent (tf2onnx support table)") from error
    return proto


@dataclass
class TorchSource:
    """A PyTorch model to export: an nn.Module, an ExportedProgram or a TorchScript module."""

    model: Any
    description: str
    kind: str  # "module", "pt2" or "torchscript"


def torch_source(source: Any) -> TorchSource:
    """An nn.Module, a `module:factory` spec, a .pt2 file or a TorchScript file, loaded."""
    from edge_sdk.loaders.torch_weights import TorchModelSpec, factory_model

    torch = require("torch", "PyTorch intake")
    if isinstance(source, TorchModelSpec):  # a factory with --weights (checkpoint intake)
        return TorchSource(factory_model(source)[0], str(source), "module")
    if isinstance(source, torch.nn.Module):
        return TorchSource(source.eval(), type(source).__name__, "module")
    if is_factory_spec(source):
        return TorchSource(module_from_factory(source).eval(), source, "module")
    path = Path(source)
    from edge_sdk.models import detect_model_kind

    kind = detect_model_kind(path)
    if kind == "pt2":
        from edge_sdk.model_safety import model_code_trusted

        if not model_code_trusted():  # --trust-model: the user vouches for the file's origin
            refuse_pickles_in_pt2(path)
        try:
            return TorchSource(torch.export.load(str(path)), str(path), "pt2")
        except (RuntimeError, ValueError, KeyError, OSError) as error:
            raise ModelFileError(f"cannot load the ExportedProgram {path}: {error}", fix="save it with torch.export.save(program, 'model.pt2')") from error
    if kind == "torchscript":
        try:
            return TorchSource(torch.jit.load(str(path), map_location="cpu").eval(), str(path), "torchscript")
        except (RuntimeError, ValueError, OSError) as error:
            raise ModelFileError(
                f"cannot load {path} as TorchScript: {error}",
                fix="save a TorchScript module with torch.jit.save, or a program with torch.export.save (.pt2); state dicts need their module code (module:factory)",
            ) from error
    raise ModelFileError(f"{path} is a {kind} model, not a PyTorch one")


# Parts of a .pt2 archive that torch.export.load unpickles: sample inputs and legacy (torch <= 2.7) weights and
# constants. torch tries `torch.load(weights_only=True)` on them and, when that fails, falls back to a full
# unpickle (torch/_export/serde/serialize.py: deserialize_torch_artifact), which runs any code the file holds.
_PT2_PICKLED_MEMBERS = re.compile(r"(^|/)(data/sample_inputs/[^/]+\.pt|data/(weights|constants)/[^/]+\.pt|serialized_(state_dict|constants|example_inputs)\.json)$")
_PT2_CONFIGS = re.compile(r"(^|/)data/(weights|constants)/[^/]+_config\.json$")


def refuse_pickles_in_pt2(path: Path) -> None:
    """Refuse a .pt2 whose loading would unpickle arbitrary objects; plain tensors and JSON graphs pass.

    Every pickled member must load with `torch.load(weights_only=True)` (so torch never falls back to a full
    unpickle), and no weight or constant may be stored as a pickle or as a custom/opaque Python object.
    """
    import io
    import json
    import pickle
    import zipfile

    torch = require("torch", "PyTorch intake")
    refused = f"{path} holds pickled Python objects, which loading would run as code"
    fix = "export the model again with torch.export.save from plain tensors, or pass --trust-model if you trust where the file comes from"
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if _PT2_CONFIGS.search(name):
                    entries = json.loads(archive.read(name)).get("config", {})
                    for key, entry in entries.items():
                        if entry.get("use_pickle") or not str(entry.get("path_name", "")).startswith(("weight_", "tensor_")):
                            raise ModelFileError(f"{refused} ({name}: {key!r} is stored as {entry.get('path_name')!r}, use_pickle={entry.get('use_pickle')})", fix=fix)
                elif _PT2_PICKLED_MEMBERS.search(name):
                    payload = archive.read(name)
                    if payload:
                        try:
                            torch.load(io.BytesIO(payload), weights_only=True)
                        except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, AttributeError, TypeError) as error:
                            raise ModelFileError(f"{refused} ({name}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})", fix=fix) from error
    except (zipfile.BadZipFile, OSError, ValueError, AttributeError) as error:
        raise ModelFileError(f"{path} is not a readable .pt2 archive: {type(error).__name__}: {error}", fix="save it with torch.export.save(program, 'model.pt2')") from error


def torch_to_onnx(source: TorchSource, shapes: dict[str, list[int]]) -> Any:
    """Export with torch.onnx.export at the given example input shape; returns the ModelProto (weights loaded)."""
    torch = require("torch", "PyTorch to ONNX")
    onnx = require("onnx", "PyTorch to ONNX")
    if not shapes:
        raise UsageError(f"exporting {source.description} to ONNX needs the example input shape", fix="pass --input-shape 1,1,28,28 (input_shapes={'': [1, 1, 28, 28]})")
    names = [name or f"input_{index}" for index, name in enumerate(shapes)]
    examples = tuple(torch.zeros(shape, dtype=torch.float32) for shape in shapes.values())
    # torch.export cannot trace a ScriptModule; the TorchScript exporter (dynamo=False) can.
    dynamo = source.kind != "torchscript"
    with tempfile.TemporaryDirectory(prefix="edge-sdk-torch-") as folder:
        target = Path(folder) / "model.onnx"
        try:
            # torch.onnx.export (dynamo) prints its progress to stdout, which carries only our output (--json).
            with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
                torch.onnx.export(source.model, examples, str(target), input_names=names, output_names=["output"], dynamo=dynamo, opset_version=ONNX_OPSET if not dynamo else None)
        except Exception as error:  # noqa: BLE001 - torch's exporters raise many unrelated classes; re-raised with context
            if isinstance(error, (KeyboardInterrupt, MemoryError)):
                raise
            raise ConversionError(f"torch.onnx.export failed for {source.description}: {type(error).__name__}: {str(error)[:2000]}", fix="check the model runs with torch.export.export at this input shape") from error
        return onnx.load(str(target))  # loads MODEL.onnx.data into memory


def run_torch(source: TorchSource, inputs: list[Any]) -> list[Any]:
    """Float outputs of the PyTorch model itself (the validation reference)."""
    torch = require("torch")
    model = source.model.module() if source.kind == "pt2" else source.model
    with torch.no_grad():
        result = model(*[torch.from_numpy(x) for x in inputs])
    values = result if isinstance(result, (list, tuple)) else [result]
    return [value.detach().numpy() for value in values]


def source_model(source: Any) -> tuple[str, Any]:
    """('keras' | 'onnx' | 'torch', loaded): the source of an ONNX conversion, loaded."""
    from edge_sdk.models import detect_model_kind

    if not isinstance(source, (str, Path)) or is_factory_spec(source):
        return "torch", torch_source(source)
    kind = detect_model_kind(Path(source))
    if kind in TORCH_KINDS:
        return "torch", torch_source(source)
    if kind == "onnx":
        from edge_sdk.loaders.onnx_intake import load_onnx

        return "onnx", load_onnx(Path(source))
    if kind == "tflite":
        raise UsageError(f"{source} is already a TFLite artifact; convert the float source model to ONNX instead")
    return "keras", load_model(Path(source))
