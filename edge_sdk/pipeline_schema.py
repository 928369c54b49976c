"""The JSON Schema of the pipeline file (`edge.yaml`), built from the same tables the reader checks against
(edge_sdk/pipeline_config.py), and shipped as edge_sdk/schemas/edge.schema.json for editors: a first line

    # yaml-language-server: $schema=<path or URL of edge.schema.json>

gives completion and checking in any editor that runs yaml-language-server. `load_config` validates every file
against it after its own, more specific checks; tests/test_pipeline_schema.py keeps the shipped file equal to this.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "edge.schema.json"
# Where a pipeline benches: this machine, or a device over ssh (edge_sdk.pipeline_config reads these too).
TARGET_KINDS = ("desktop", "local", "ssh")


def pipeline_schema() -> dict[str, Any]:
    """The schema as a dict (JSON Schema draft 2020-12)."""
    from edge_sdk.formats import FORMATS

    path = {"type": "string", "minLength": 1, "description": "a path, relative to this file's folder"}
    shape = {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 1}}
    preprocess_properties: dict[str, Any] = {
        "scale": {"type": "number", "minimum": 0, "description": "multiply raw values, e.g. 0.0625 for 0..16 images"},
        "mean": {"type": "array", "items": {"type": "number"}, "description": "subtract per channel"},
        "std": {"type": "array", "items": {"type": "number"}, "description": "divide per channel"},
        "layout": {"enum": ["NHWC", "NCHW"], "description": "layout the model expects"},
        "source_layout": {"enum": ["NHWC", "NCHW"], "description": "layout of the raw arrays"},
        "resize": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2, "description": "[height, width] for image folders"},
        "color": {"enum": ["rgb", "grayscale"], "description": "colour mode for image folders"},
    }
    preprocess = {"type": "object", "additionalProperties": False, "properties": preprocess_properties}
    formats = {
        "type": "object", "additionalProperties": False, "description": "format -> precision modes to convert to",
        "properties": {fmt: {"type": "array", "minItems": 1, "items": {"enum": list(modes)}} for fmt, modes in ((name, spec.modes) for name, spec in FORMATS.items())},
    }
    model = {
        "type": "object", "additionalProperties": False, "required": ["path"],
        "properties": {
            "path": {"type": "string", "minLength": 1, "description": "the float model: .keras, .h5, SavedModel folder, .onnx (relative to this file's folder), or a PyTorch package.module:factory"},
            "preprocess": preprocess, "formats": formats,
            "teacher": {"type": "string", "description": "another model of this file whose labels this one was trained to match"},
            "weights": {**path, "description": "PyTorch factory: trained weights (.safetensors, Accelerate save_model folder, DeepSpeed checkpoint folder, .pt/.bin state dict)"},
            "trust_model": {"type": "boolean", "description": "let code carried by this model's files run (DeepSpeed pickles, Lambda layers): --trust-model for this model alone"},
            "nhwc_input": {"type": "boolean", "description": "PyTorch factory: its TFLite artifacts take NHWC (convert --nhwc-input); other formats keep NCHW"},
            "input_shape": {
                "description": "example input shape (PyTorch: as it takes it, NCHW): [1, 3, 224, 224], or input name -> shape",
                "oneOf": [shape, {"type": "object", "minProperties": 1, "additionalProperties": shape}],
            },
        },
    }
    target = {
        "type": "object", "additionalProperties": False, "required": ["kind"],
        "properties": {
            "kind": {"enum": list(TARGET_KINDS), "description": "desktop/local: this machine; ssh: a device"},
            "host": {"type": "string", "description": "ssh: ssh://user@host[:port] or a host name"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "user": {"type": "string"},
            "profile": {"type": "string", "description": "ssh: the device's profile (see `edge-sdk targets`)"},
            "ssh_key": path, "known_hosts": path,
            "accept_new_host_key": {"type": "boolean"},
            "python": {"type": "string", "description": "the device's Python interpreter"},
            "timeout_s": {"type": "number", "minimum": 1},
        },
        "allOf": [{"if": {"properties": {"kind": {"const": "ssh"}}}, "then": {"required": ["kind", "host", "profile"]}}],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://edge-sdk.invalid/schemas/edge.schema.json",
        "title": "edge-sdk pipeline file (edge.yaml)",
        "type": "object",
        "additionalProperties": False,
        "required": ["data", "models"],
        "properties": {
            "version": {"const": 1},
            "output": {**path, "description": "output folder (default edge-output)"},
            "data": {
                "type": "object", "additionalProperties": False, "required": ["evaluation"],
                "properties": {
                    "evaluation": {**path, "description": "evaluation data: .npz, .npy or image folder"},
                    "calibration": {**path, "description": "calibration data (int8, int16x8)"},
                    "label_key": {"type": "string"},
                    "max_samples": {"type": ["integer", "null"], "minimum": 1},
                },
            },
            "preprocess": preprocess,
            "models": {"type": "object", "minProperties": 1, "additionalProperties": model},
            "formats": formats,
            "targets": {"type": "object", "minProperties": 1, "additionalProperties": target},
            "bench": {
                "type": "object", "additionalProperties": False,
                "properties": {"runs": {"type": "integer", "minimum": 1}, "warmup": {"type": "integer", "minimum": 0}, "threads": {"type": "integer", "minimum": 1}},
            },
            "accuracy_budget": {
                "type": "object", "additionalProperties": False,
                "properties": {"max_drop_points": {"type": "number", "minimum": 0, "description": "the accuracy gate: the drop's 95 % upper bound, in points"}},
            },
        },
    }


def schema_text() -> str:
    """The shipped file's exact text."""
    return json.dumps(pipeline_schema(), indent=2) + "\n"


def validate_pipeline_document(document: Any, path: Path) -> None:
    """Raise UsageError naming the file and the first key path that breaks the schema."""
    from edge_sdk._lazy import require
    from edge_sdk.errors import UsageError

    jsonschema = require("jsonschema", "checking pipeline files")
    errors = sorted(jsonschema.Draft202012Validator(pipeline_schema()).iter_errors(document), key=lambda error: [str(p) for p in error.absolute_path])
    if errors:
        first = errors[0]
        where = ".".join(str(part) for part in first.absolute_path) or "top level"
        raise UsageError(f"{path}: {where}: {first.message}", fix=f"the file's schema is {SCHEMA_FILE} (point your editor at it with `# yaml-language-server: $schema=`)")
