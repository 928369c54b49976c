"""Checkpoint intake: load trained weights into a `module:factory` PyTorch model (`--weights PATH`).

Accepted: a `.safetensors` file; a Hugging Face Accelerate `save_model` folder (one file or shards with their
index JSON, safetensors or `.bin`); a DeepSpeed checkpoint folder (ZeRO stage 1, 2 or 3, consolidated to fp32
with DeepSpeed's own `zero_to_fp32`, which reads the fp32 masters of fp16/bf16 training); a plain state dict
(`.pt`, `.pth`, `.bin`) read with `torch.load(weights_only=True)` only.

DeepSpeed's state files are full pickles (optimizer and engine objects): `zero_to_fp32` unpickles them, which can
run code from the file, so they load only with `trust_model=True` (`--trust-model`). Plain state dicts never get a
full unpickle: what `weights_only=True` refuses is refused.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_sdk._lazy import require
from edge_sdk.errors import ModelFileError, UsageError
from edge_sdk.fileio import sha256_of

STATE_DICT_SUFFIXES = (".pt", ".pth", ".bin")
# How many offending keys an error lists.
SHOWN_KEYS = 5


@dataclass(frozen=True)
class TorchModelSpec:
    """A PyTorch model to build: `package.module:factory`, optionally with trained weights applied."""

    factory: str
    weights: Path | None = None
    trust_model: bool = False

    def __str__(self) -> str:
        return self.factory if self.weights is None else f"{self.factory} with weights {self.weights}"


def checkpoint_kind(path: Path) -> str:
    """'safetensors', 'accelerate', 'deepspeed' or 'state_dict', from the file or folder's content."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"weights {path} do not exist", fix="check the path given to --weights")
    if path.is_file():
        if path.suffix == ".safetensors":
            return "safetensors"
        if path.suffix in STATE_DICT_SUFFIXES:
            return "state_dict"
        raise ModelFileError(f"weights {path} are not a checkpoint this SDK reads (.safetensors, .pt, .pth, .bin, or a folder)",
                             fix="save them with safetensors, Accelerate's save_model, or DeepSpeed's save_checkpoint")
    if (path / "latest").is_file() or any(path.glob("*/*model_states.pt")) or any(path.glob("*model_states.pt")):
        return "deepspeed"
    if any(path.glob("*.safetensors")) or any(path.glob("pytorch_model*.bin")) or any(path.glob("*.index.json")):
        return "accelerate"
    raise ModelFileError(f"weights folder {path} is neither an Accelerate save_model folder nor a DeepSpeed checkpoint",
                         fix="give the folder written by accelerator.save_model(model, dir) or engine.save_checkpoint(dir)")


def read_state_dict(path: Path, *, trust_model: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state dict of tensors, description for the manifest) from a checkpoint of any accepted kind."""
    path = Path(path)
    kind = checkpoint_kind(path)
    readers = {"safetensors": _read_safetensors, "state_dict": _read_plain, "accelerate": _read_accelerate}
    if kind == "deepspeed":
        state, details = _read_deepspeed(path, trust_model)
    else:
        state, details = readers[kind](path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    described = {"path": str(path), "kind": kind, "tensors": len(state), **details}
    if path.is_file():
        described["sha256"] = sha256_of(path)
    else:
        described["files"] = len(files)
    return state, described


def apply_weights(model: Any, path: Path, *, trust_model: bool = False) -> dict[str, Any]:
    """Load the checkpoint at `path` into `model` strictly; returns its description for the manifest.

    Missing or unexpected keys and shape mismatches are one ModelFileError listing the first few of each."""
    state, described = read_state_dict(path, trust_model=trust_model)
    expected = model.state_dict()
    state = _strip_common_prefix(state, expected)
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    mismatched = [f"{key}: checkpoint {list(state[key].shape)} vs model {list(expected[key].shape)}"
                  for key in expected if key in state and tuple(state[key].shape) != tuple(expected[key].shape)]
    problems = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched)):
        if keys:
            shown = ", ".join(keys[:SHOWN_KEYS]) + (f" (and {len(keys) - SHOWN_KEYS} more)" if len(keys) > SHOWN_KEYS else "")
            problems.append(f"{len(keys)} {label}: {shown}")
    if problems:
        raise ModelFileError(f"weights {path} do not fit the model ({type(model).__name__}): " + "; ".join(problems),
                             fix="check the factory builds the architecture the checkpoint was trained with (same layers and sizes)")
    torch = require("torch", "loading PyTorch weights")
    with torch.no_grad():
        model.load_state_dict({key: value.to(expected[key].dtype) for key, value in state.items()}, strict=True)
    return described


def _strip_common_prefix(state: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """Checkpoints of wrapped models (DDP, DeepSpeed engines) prefix every key with 'module.'."""
    if state and not any(key in expected for key in state) and all(key.startswith("module.") for key in state):
        return {key[len("module."):]: value for key, value in state.items()}
    return state


def _read_safetensors(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    safetensors_torch = require("safetensors.torch", f"reading {path}")
    try:
        return dict(safetensors_torch.load_file(str(path), device="cpu")), {}
    except Exception as error:  # noqa: BLE001 - safetensors raises its own SafetensorError (not exported) and OSError
        if isinstance(error, (KeyboardInterrupt, MemoryError)):
            raise
        raise ModelFileError(f"{path} is not a readable safetensors file: {type(error).__name__}: {error}", fix="save it again with safetensors.torch.save_file") from error


def _read_plain(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    import pickle

    torch = require("torch", f"reading {path}")
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, AttributeError, TypeError) as error:
        raise ModelFileError(
            f"{path} is not a plain state dict of tensors: torch.load(weights_only=True) refuses it ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})",
            fix="save model.state_dict() (torch.save) or use safetensors; pickled objects are never loaded, even with --trust-model",
        ) from error
    if isinstance(loaded, dict):
        for key in ("state_dict", "model", "module"):
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ModelFileError(f"{path} holds a {type(loaded).__name__}, not a state dict of tensors", fix="save model.state_dict() with torch.save")
    return dict(loaded), {}


def _read_accelerate(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """An `accelerator.save_model(model, dir)` folder: one weights file, or shards listed by an index JSON."""
    indexes = sorted(path.glob("*.index.json"))
    if indexes:
        try:
            weight_map = json.loads(indexes[0].read_text())["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelFileError(f"{indexes[0]} is not a shard index (no weight_map): {error}", fix="save the model again with accelerator.save_model") from error
        shards = sorted(set(weight_map.values()))
        missing = [name for name in shards if not (path / name).is_file()]
        if missing:
            raise ModelFileError(f"{indexes[0]} lists shard(s) not in {path}: {', '.join(missing[:SHOWN_KEYS])}", fix="copy every shard of the checkpoint")
        files = [path / name for name in shards]
    else:
        files = sorted(path.glob("*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))
        if len(files) > 1:
            raise ModelFileError(f"{path} holds {len(files)} weight files but no *.index.json to say how they fit", fix="keep the index JSON that save_model wrote beside the shards")
    state: dict[str, Any] = {}
    for file in files:
        part, _ = _read_safetensors(file) if file.suffix == ".safetensors" else _read_plain(file)
        state.update(part)
    return state, {"shards": len(files), "index": indexes[0].name if indexes else None}


def _read_deepspeed(path: Path, trust_model: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """A DeepSpeed `save_checkpoint` folder, consolidated to fp32 by deepspeed.utils.zero_to_fp32."""
    latest = path / "latest"
    if not latest.is_file():
        raise ModelFileError(f"DeepSpeed checkpoint folder {path} has no 'latest' file naming the checkpoint tag to load",
                             fix="give the folder engine.save_checkpoint(dir) wrote (it writes dir/latest), or write the tag into dir/latest")
    tag = latest.read_text().strip()
    if not (path / tag).is_dir():
        raise ModelFileError(f"{latest} names tag {tag!r}, but {path / tag} is not there", fix="copy the whole checkpoint folder")
    if not trust_model:
        raise UsageError(
            f"DeepSpeed checkpoint {path} is stored as Python pickles (engine and optimizer state); loading them can run code from the files",
            fix="pass --trust-model (API: trust_model=True) if you trust where the checkpoint came from, or save the weights with safetensors",
        )
    try:
        # DeepSpeed logs to stdout (its handler binds the stream at import) and draws progress bars: stdout is ours.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            require("deepspeed", "consolidating a DeepSpeed checkpoint")
            from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

            state = get_fp32_state_dict_from_zero_checkpoint(str(path), tag=tag)
    except (FileNotFoundError, ValueError, KeyError, RuntimeError, AssertionError, pickle.UnpicklingError, EOFError) as error:
        # A truncated or corrupt state file fails in DeepSpeed's torch.load: one message, not its traceback.
        raise ModelFileError(f"DeepSpeed could not consolidate {path} (tag {tag}): {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
                             fix="check every rank's files of the checkpoint are present and complete") from error
    stage = _zero_stage(path / tag)
    return {key: value.float() for key, value in state.items()}, {"tag": tag, "zero_stage": stage, "consolidated_by": "deepspeed.utils.zero_to_fp32"}


def _zero_stage(folder: Path) -> str | None:
    """The ZeRO stage from DeepSpeed's file names: stage 3 shards the model states per rank (zero_pp_rank_*_model_states);
    stages 1 and 2 write one mp_rank_* model file and per-rank optimizer files, the same names for both."""
    names = [p.name for p in folder.iterdir()]
    if any(name.startswith("zero_pp_rank_") and "model_states" in name for name in names):
        return "3"
    if any("optim_states" in name for name in names):
        return "1 or 2"
    return None


def factory_model(spec: TorchModelSpec) -> tuple[Any, dict[str, Any] | None]:
    """(nn.Module in eval mode, weights description or None) for a TorchModelSpec."""
    from edge_sdk.loaders.torch_factory import module_from_factory

    model = module_from_factory(spec.factory)
    described = apply_weights(model, spec.weights, trust_model=spec.trust_model) if spec.weights is not None else None
    return model.eval(), described


def describe_factory(spec: TorchModelSpec, input_shapes: dict[str, list[int]]) -> dict[str, Any]:
    """What `edge-sdk inspect package.module:factory --input-shape ...` shows: the module's inputs and outputs (from one
    run on zeros at the example shapes), its parameter count and the checkpoint applied, if any."""
    if not input_shapes:
        raise UsageError(f"inspecting the PyTorch factory {spec.factory} needs its example input shape", fix="pass --input-shape 1,3,224,224")
    torch = require("torch", "inspecting a PyTorch factory")
    model, weights = factory_model(spec)
    examples = [torch.zeros(shape, dtype=torch.float32) for shape in input_shapes.values()]
    try:
        with torch.no_grad():
            result = model(*examples)
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        raise UsageError(f"the PyTorch model of {spec.factory} does not run at input shapes {list(input_shapes.values())}: {type(error).__name__}: {error}",
                         fix="give the shape the model takes (NCHW for convolutions), e.g. --input-shape 1,3,224,224") from error
    outputs = result if isinstance(result, (list, tuple)) else [result]
    return {
        "path": spec.factory, "kind": "pytorch_factory", "module": type(model).__name__,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "inputs": [{"name": name or f"input_{i}", "shape": list(shape), "dtype": "float32"} for i, (name, shape) in enumerate(input_shapes.items())],
        "outputs": [{"name": f"output_{i}", "shape": list(value.shape), "dtype": str(value.dtype).replace("torch.", "")} for i, value in enumerate(outputs)],
        "weights": weights,
    }
