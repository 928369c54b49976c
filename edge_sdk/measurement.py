"""The measurement settings, declared once: one argument group and one JSON form, both building a BenchSettings.

`edge-sdk bench`, `edge-sdk run`, `python -m edge_sdk.runner` and the pipeline all build their settings here
(as Polygraphy's `tools/args` groups add, parse and write back their own flags):

- `add_measurement_args(parser)` adds the flags (--runs, --warmup, --threads, --no-xnnpack, --kernels,
  --reset-state, --providers, --graph-optimization, --target; with `io=True` also the I/O model's --batch-axis and
  --input-shape, which bench takes from edge_sdk.io_args instead);
- `settings_from_args(args, **host_only)` parses them (over a `--settings FILE` when the parser has one);
- `settings_to_json(settings)` / `settings_from_mapping(mapping)` write and read the JSON a remote bench pushes to
  the device with the model (the runner reads it with `--settings settings.json`): no flags rebuilt by hand.

The JSON is checked against SETTINGS_FIELDS by a small dependency-free check (the slim runner has numpy and one
runtime, no jsonschema); `edge_sdk/schemas/settings.schema.json` is the same table as a JSON Schema
(`settings_json_schema()`; tests keep the two equal and agreeing). A bad value is a UsageError (exit 2) that
names the key. Standard library only: the slim runner imports this module.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from edge_sdk.errors import UsageError

SETTINGS_VERSION = 1
KERNEL_CHOICES = ("default", "reference")
GRAPH_OPTIMIZATION_CHOICES = ("disable", "basic", "extended", "all")
SCHEMA_ID = "edge-sdk/settings.schema.json"

# One row per key: JSON type ("integer", "number", "boolean", "string", "array", "object"), and what else holds.
# `nullable` admits null (the setting is unset); `minimum` / `exclusive_minimum` bound numbers; `enum` lists choices.
RUNNER_FIELDS: dict[str, dict[str, Any]] = {
    "threads": {"type": "integer", "minimum": 1, "nullable": True},
    "xnnpack": {"type": "boolean"},
    "kernels": {"type": "string", "enum": list(KERNEL_CHOICES)},
    "reset_state": {"type": "boolean"},
    "providers": {"type": "array", "items": {"type": "string", "min_length": 1}},
    "graph_optimization": {"type": "string", "enum": list(GRAPH_OPTIMIZATION_CHOICES)},
    # Fixed dims for an input's dynamic dims (--input-shape NAME:DIMS; the name "" means the only input).
    "input_shapes": {"type": "map", "values": {"type": "array", "items": {"type": "integer", "minimum": 1}}},
}
SETTINGS_FIELDS: dict[str, dict[str, Any]] = {
    "settings_version": {"type": "integer", "enum": [SETTINGS_VERSION]},
    "runs": {"type": "integer", "minimum": 1},
    "warmup": {"type": "integer", "minimum": 0},
    "max_samples": {"type": "integer", "minimum": 1, "nullable": True},
    "seed": {"type": "integer", "minimum": 0},
    "target": {"type": "string", "min_length": 1},
    "latency_target": {"type": "number", "exclusive_minimum": 0, "nullable": True},
    "time_budget_s": {"type": "number", "exclusive_minimum": 0, "nullable": True},
    "cold_start": {"type": "boolean"},
    "max_drop_points": {"type": "number", "minimum": 0, "nullable": True},
    # false: run an artifact whose sha256 does not match its manifest (--no-verify); its result says unverified.
    "verify": {"type": "boolean"},
    # Where each input's batch axis goes (--batch-axis NAME:AXIS; null: no batch axis), edge_sdk.io_model.
    "batch_axes": {"type": "map", "values": {"type": "integer", "minimum": 0, "nullable": True}},
    "runner": {"type": "object", "fields": RUNNER_FIELDS},
}
REQUIRED = ("settings_version",)


# --- the argument group --------------------------------------------------------------------------------
def add_measurement_args(parser: argparse.ArgumentParser, io: bool = False) -> None:
    """Add the measurement flags. Their defaults are None: `settings_from_args` tells given flags from the
    defaults (which BenchSettings holds), so a flag given on the command line overrides a --settings file."""
    group = parser.add_argument_group("measurement")
    group.add_argument("--runs", type=int, help="timed runs (default 100)")
    group.add_argument("--warmup", type=int, help="untimed runs before them (default 10)")
    group.add_argument("--threads", type=int, help="runtime threads (default: the runtime's, or the target profile's)")
    group.add_argument("--no-xnnpack", action="store_true", default=None, help="TFLite: disable the XNNPACK delegate")
    group.add_argument("--kernels", choices=KERNEL_CHOICES, help="TFLite kernels (reference kernels can differ slightly in int8; default: default)")
    group.add_argument("--reset-state", action="store_true", default=None, help="reset state variables before every sample (LSTMs)")
    group.add_argument("--providers", help="ONNX Runtime execution providers in order, e.g. CUDA,CPU (default CPU)")
    group.add_argument("--graph-optimization", choices=GRAPH_OPTIMIZATION_CHOICES, help="ONNX Runtime graph optimisation level (default all)")
    group.add_argument("--target", help="target profile (see `edge-sdk targets`; default desktop), recorded in the result")
    group.add_argument("--no-verify", action="store_true", default=None,
                       help="run artifacts whose sha256 does not match their manifest (results say unverified; default: refuse them, exit 3)")
    if io:
        group.add_argument("--batch-axis", action="append", metavar="NAME:AXIS", help="where an input's batch axis goes: state:1, or sr:none (default: found from the shapes)")
        group.add_argument("--input-shape", action="append", metavar="NAME:DIMS", help="fix an input's dynamic dims, e.g. x:1,3,48,192 (default: the data's size)")


def settings_from_args(args: argparse.Namespace, **host_only: Any) -> Any:
    """The BenchSettings of the parsed flags, over `args.settings` (a JSON file) when given.

    `host_only` are BenchSettings fields the group does not parse (max_samples, seed, gates, isolation limits)."""
    base: dict[str, Any] = read_settings_file(args.settings) if getattr(args, "settings", None) else {"settings_version": SETTINGS_VERSION}
    flags: dict[str, Any] = {}
    runner: dict[str, Any] = {}
    for key in ("runs", "warmup", "target"):
        if getattr(args, key, None) is not None:
            flags[key] = getattr(args, key)
    if getattr(args, "threads", None) is not None:
        runner["threads"] = args.threads
    if getattr(args, "no_xnnpack", None):
        runner["xnnpack"] = False
    if getattr(args, "kernels", None) is not None:
        runner["kernels"] = args.kernels
    if getattr(args, "reset_state", None):
        runner["reset_state"] = True
    if getattr(args, "no_verify", None):
        flags["verify"] = False
    if getattr(args, "providers", None) is not None:
        runner["providers"] = [part.strip() for part in args.providers.split(",") if part.strip()]
    if getattr(args, "graph_optimization", None) is not None:
        runner["graph_optimization"] = args.graph_optimization
    if getattr(args, "input_shape", None):
        from edge_sdk.io_model import parse_named_shapes

        runner["input_shapes"] = parse_named_shapes(args.input_shape)
    if getattr(args, "batch_axis", None):
        from edge_sdk.io_model import parse_batch_axes

        flags["batch_axes"] = parse_batch_axes(args.batch_axis)
    # Host-only values the table knows (seed, max_samples, the gates) are checked with the rest, so a device never
    # refuses what the host accepted; the isolation limits (timeout, memory) are not sent and BenchSettings checks them.
    checked = {key: value for key, value in host_only.items() if key in SETTINGS_FIELDS}
    unchecked = {key: value for key, value in host_only.items() if key not in SETTINGS_FIELDS}
    merged = {**base, **flags, **checked, "runner": {**base.get("runner", {}), **runner}}
    return settings_from_mapping(merged, "the command line" if not getattr(args, "settings", None) else f"{args.settings} and the command line", **unchecked)


# --- the JSON form -------------------------------------------------------------------------------------
def settings_to_json(settings: Any) -> dict[str, Any]:
    """What a device receives: every measured setting, versioned. `settings_from_mapping` reads it back. The output
    kinds and state pairs stay on the host: fidelity is computed there."""
    measured = {key: value for key, value in settings.to_dict().items() if key in SETTINGS_FIELDS}
    return {"settings_version": SETTINGS_VERSION, **measured, "target": settings.target, "verify": settings.verify}


def settings_from_mapping(mapping: Any, source: str = "settings", **host_only: Any) -> Any:
    """Check `mapping` (the JSON form; keys may be missing, then BenchSettings' defaults hold) and build BenchSettings."""
    from edge_sdk.bench import BenchSettings
    from targets.runners.base import RunnerOptions

    values = check_settings(mapping, source)
    values.pop("settings_version")
    runner = RunnerOptions(**values.pop("runner", {}))
    return BenchSettings(**{**values, **host_only}, runner=runner)


def read_settings_file(path: Path) -> dict[str, Any]:
    """The checked JSON mapping in `path`; UsageError (exit 2) naming the file and the key when it is not valid."""
    try:
        document = json.loads(Path(path).read_text())
    except OSError as error:
        raise UsageError(f"cannot read the settings file {path}: {error.strerror or error}") from error
    except (ValueError, UnicodeDecodeError) as error:
        raise UsageError(f"the settings file {path} is not JSON: {error}", fix="write it with `edge-sdk` or follow edge_sdk/schemas/settings.schema.json") from error
    return check_settings(document, str(path))


def write_settings_file(settings: Any, path: Path) -> Path:
    """Write `settings` as JSON (atomically) for a device's runner to read with --settings."""
    from edge_sdk.fileio import write_json_atomic

    write_json_atomic(Path(path), settings_to_json(settings))
    return Path(path)


def check_settings(document: Any, source: str = "settings") -> dict[str, Any]:
    """A checked copy of `document` (integral floats become ints); UsageError naming the first bad key."""
    checked = _check_object(document, SETTINGS_FIELDS, "", source)
    for key in REQUIRED:
        if key not in checked:
            raise UsageError(f"{source}: {key!r} is missing", fix=f'add "{key}": {SETTINGS_VERSION}')
    return checked


def _check_object(value: Any, fields: dict[str, dict[str, Any]], prefix: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{source}: {prefix.rstrip('.') or 'the settings'} must be a JSON object, got {_shown(value)}")
    checked: dict[str, Any] = {}
    for key, item in value.items():
        if key not in fields:
            raise UsageError(f"{source}: unknown setting {prefix + str(key)!r}", fix=f"known keys: {', '.join(prefix + name for name in fields)}")
        checked[key] = _check_value(item, fields[key], prefix + key, source)
    return checked


def _check_value(value: Any, rule: dict[str, Any], key: str, source: str) -> Any:
    kind = rule["type"]
    if value is None and rule.get("nullable"):
        return None
    if kind == "object":
        return _check_object(value, rule["fields"], key + ".", source)
    if kind == "map":  # any string keys, every value by one rule
        if not isinstance(value, dict):
            raise UsageError(f"{source}: {key!r} must be a JSON object, got {_shown(value)}")
        return {str(name): _check_value(item, rule["values"], f"{key}.{name}", source) for name, item in value.items()}
    if kind == "array":
        if not isinstance(value, list):
            raise UsageError(f"{source}: {key!r} must be a list, got {_shown(value)}")
        return [_check_value(item, rule["items"], f"{key}[{index}]", source) for index, item in enumerate(value)]
    if kind == "boolean" and not isinstance(value, bool):
        raise UsageError(f"{source}: {key!r} must be true or false, got {_shown(value)}")
    if kind == "string" and (not isinstance(value, str) or len(value) < rule.get("min_length", 0)):
        raise UsageError(f"{source}: {key!r} must be a non-empty string, got {_shown(value)}")
    if kind in ("integer", "number"):
        value = _checked_number(value, kind, key, source)
        if "minimum" in rule and value < rule["minimum"]:
            raise UsageError(f"{source}: {key!r} must be at least {rule['minimum']}, got {_shown(value)}")
        if "exclusive_minimum" in rule and value <= rule["exclusive_minimum"]:
            raise UsageError(f"{source}: {key!r} must be more than {rule['exclusive_minimum']}, got {_shown(value)}")
    if "enum" in rule and value not in rule["enum"]:
        raise UsageError(f"{source}: {key!r} must be one of {', '.join(map(str, rule['enum']))}, got {_shown(value)}")
    return value


def _checked_number(value: Any, kind: str, key: str, source: str) -> Any:
    # JSON has one number type: 3.0 is an integer to JSON Schema too. bool is an int in Python, not in JSON.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{source}: {key!r} must be a{'n integer' if kind == 'integer' else ' number'}, got {_shown(value)}")
    if kind == "integer":
        if isinstance(value, float) and not value.is_integer():
            raise UsageError(f"{source}: {key!r} must be an integer, got {_shown(value)}")
        return int(value)
    return value


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list, str, bool, int, float, type(None))) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def settings_json_schema() -> dict[str, Any]:
    """SETTINGS_FIELDS as a JSON Schema (draft 2020-12): what edge_sdk/schemas/settings.schema.json holds."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
        "title": "edge-sdk measurement settings (what a device's runner reads with --settings)",
        **_schema_object(SETTINGS_FIELDS), "required": list(REQUIRED),
    }


def _schema_object(fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": {key: _schema_value(rule) for key, rule in fields.items()}}


def _schema_value(rule: dict[str, Any]) -> dict[str, Any]:
    if rule["type"] == "object":
        return _schema_object(rule["fields"])
    if rule["type"] == "map":
        return {"type": "object", "additionalProperties": _schema_value(rule["values"])}
    schema: dict[str, Any] = {"type": [rule["type"], "null"] if rule.get("nullable") else rule["type"]}
    names = {"minimum": "minimum", "exclusive_minimum": "exclusiveMinimum", "enum": "enum", "min_length": "minLength"}
    schema.update({names[name]: value for name, value in rule.items() if name in names})
    if rule["type"] == "array":
        schema["items"] = _schema_value(rule["items"])
    return schema
