"""The typed, versioned manifest beside every artifact (`NAME.manifest.json`), and its verification.

A manifest says where an artifact came from (source and sha256), how it was made (format, mode, options,
calibration, validation), with what (toolchain versions), how to feed it (preprocessing and an I/O signature:
names, dtypes, shapes with dynamic dims, batch axes, quantization parameters, output kinds, state pairs) and
which bytes it describes (the artifact's sha256 and size, external data files). Reading one checks its shape
with a small dependency-free validator (the slim on-device runner has numpy and one runtime, no jsonschema),
upgrades older versions through UPGRADES, and refuses a version newer than this SDK knows.
`edge_sdk/schemas/manifest.schema.json` describes the same record for editors and other tools; a test keeps
the two in agreement.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from edge_sdk.errors import ModelFileError
from edge_sdk.fileio import sha256_of, write_json_atomic

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 2
# Output kinds fidelity metrics are chosen by (filled in from shapes and value ranges, or given by the user).
OUTPUT_KINDS = ("class_scores", "values", "dense_map", "sequence", "state", "detections")
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "object": (dict,), "array": (list,), "boolean": (bool,),
}


def manifest_path_for(artifact_path: Path) -> Path:
    """Where the manifest of `artifact_path` lives: beside it, named `ARTIFACT.manifest.json`."""
    artifact_path = Path(artifact_path)
    return artifact_path.with_name(artifact_path.name + MANIFEST_SUFFIX)


@dataclass
class TensorSpec:
    """One input or output of an artifact, as the model itself takes or gives it."""

    name: str
    dtype: str
    shape: list[int | None]
    batch_axis: int | None = 0
    quantization: dict[str, float | int] | None = None
    kind: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> TensorSpec:
        shape = [None if d is None or (isinstance(d, int) and d < 0) else int(d) for d in payload.get("shape") or []]
        return cls(
            name=str(payload["name"]), dtype=str(payload["dtype"]), shape=shape,
            batch_axis=payload.get("batch_axis", 0 if shape else None), quantization=payload.get("quantization"), kind=payload.get("kind"),
        )


@dataclass
class Manifest:
    """What an artifact is, where it came from and how to feed it; see the module docstring."""

    format: str
    mode: str
    sha256: str
    size_bytes: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    source: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    toolchain: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] | None = None
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    external_data: list[dict[str, Any]] = field(default_factory=list)
    calibration: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None
    ops: dict[str, int] = field(default_factory=dict)
    op_count: int | None = None
    integer_op_share: float | None = None
    weights: dict[str, Any] | None = None
    gzip_size_bytes: int | None = None
    conversion_seconds: float | None = None
    quantization_ranges: str | None = None
    state_pairs: list[list[str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    # What the user should know about how the artifact was made (degenerate calibration data allowed with
    # --allow-degenerate-calibration); `inspect` and bench's reports show them.
    warnings: list[str] = field(default_factory=list)
    manifest_version: int = MANIFEST_VERSION

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["inputs"] = [t.to_dict() for t in self.inputs]
        payload["outputs"] = [t.to_dict() for t in self.outputs]
        return _finite(payload)

    @classmethod
    def from_dict(cls, payload: Any, where: str = "manifest") -> Manifest:
        """Validate (and upgrade, for older versions) a manifest read from JSON."""
        payload = upgrade(payload, where)
        problems = manifest_problems(payload)
        if problems:
            raise ModelFileError(f"{where} is not a valid edge-sdk manifest: {'; '.join(problems[:3])}", fix="delete it and convert the model again")
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in payload.items() if key in known}
        values["inputs"] = [TensorSpec.from_dict(t) for t in payload["inputs"]]
        values["outputs"] = [TensorSpec.from_dict(t) for t in payload["outputs"]]
        return cls(**values)

    def input_named(self, name: str) -> TensorSpec | None:
        return next((t for t in self.inputs if t.name == name), None)

    @property
    def failed_validation(self) -> bool:
        """True for an artifact kept by `convert --keep-failed` although it failed validation: its
        `validation.status` is "failed" and `validation.failures` says which outputs and figures failed."""
        return bool(self.validation) and (self.validation or {}).get("status") == "failed"


# The record's shape, checked without jsonschema: key -> (JSON types, required). Kept in step with
# edge_sdk/schemas/manifest.schema.json (tests/test_manifest.py checks both on the same examples).
_FIELDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "manifest_version": (("integer",), True),
    "format": (("string",), True),
    "mode": (("string",), True),
    "sha256": (("string",), True),
    "size_bytes": (("integer",), True),
    "inputs": (("array",), True),
    "outputs": (("array",), True),
    "source": (("object",), False),
    "options": (("object",), False),
    "toolchain": (("object",), False),
    "preprocess": (("object", "null"), False),
    "input_shapes": (("object",), False),
    "external_data": (("array",), False),
    "calibration": (("object", "null"), False),
    "validation": (("object", "null"), False),
    "ops": (("object",), False),
    "op_count": (("integer", "null"), False),
    "integer_op_share": (("number", "null"), False),
    "weights": (("object", "null"), False),
    "gzip_size_bytes": (("integer", "null"), False),
    "conversion_seconds": (("number", "null"), False),
    "quantization_ranges": (("string", "null"), False),
    "state_pairs": (("array",), False),
    "details": (("object",), False),
    "warnings": (("array",), False),
}
# validation.status: "passed" / "skipped", or "failed" for an artifact kept by `convert --keep-failed`.
VALIDATION_STATUSES = ("passed", "failed", "skipped")
_TENSOR_FIELDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "name": (("string",), True),
    "dtype": (("string",), True),
    "shape": (("array",), True),
    "batch_axis": (("integer", "null"), False),
    "quantization": (("object", "null"), False),
    "kind": (("string", "null"), False),
}


def _is(value: Any, types: tuple[str, ...]) -> bool:
    if value is None:
        return "null" in types
    if isinstance(value, bool):  # JSON booleans are not integers
        return "boolean" in types
    return any(isinstance(value, _JSON_TYPES[t]) for t in types if t != "null")


def _record_problems(record: Any, spec: dict[str, tuple[tuple[str, ...], bool]], where: str) -> list[str]:
    if not isinstance(record, dict):
        return [f"{where} is not a JSON object"]
    problems = [f"{where}: missing '{key}'" for key, (_, required) in spec.items() if required and key not in record]
    problems += [f"{where}: '{key}' should be {' or '.join(types)}" for key, (types, _) in spec.items() if key in record and not _is(record[key], types)]
    return problems


def manifest_problems(payload: Any) -> list[str]:
    """What is wrong with a manifest record of the current version (empty when it is valid)."""
    problems = _record_problems(payload, _FIELDS, "manifest")
    if problems:
        return problems
    if payload["size_bytes"] < 0:
        problems.append("manifest: 'size_bytes' is negative")
    if not all(isinstance(line, str) for line in payload.get("warnings", [])):
        problems.append("manifest: 'warnings' holds something other than strings")
    status = (payload.get("validation") or {}).get("status")
    if status is not None and status not in VALIDATION_STATUSES:
        problems.append(f"manifest: validation status {status!r} is not one of {', '.join(VALIDATION_STATUSES)}")
    for key in ("inputs", "outputs"):
        for index, tensor in enumerate(payload[key]):
            where = f"{key}[{index}]"
            tensor_problems = _record_problems(tensor, _TENSOR_FIELDS, where)
            if not tensor_problems:
                if not all(d is None or (_is(d, ("integer",)) and d >= 0) for d in tensor["shape"]):
                    tensor_problems.append(f"{where}: 'shape' holds something other than sizes and null")
                axis = tensor.get("batch_axis")
                if axis is not None and not (0 <= axis < max(len(tensor["shape"]), 1)):
                    tensor_problems.append(f"{where}: 'batch_axis' {axis} is outside its shape {tensor['shape']}")
                if tensor.get("kind") is not None and tensor["kind"] not in OUTPUT_KINDS:
                    tensor_problems.append(f"{where}: unknown output kind {tensor['kind']!r} (known: {', '.join(OUTPUT_KINDS)})")
            problems += tensor_problems
    names = {t.get("name") for t in payload["inputs"] if isinstance(t, dict)} | {t.get("name") for t in payload["outputs"] if isinstance(t, dict)}
    for pair in payload.get("state_pairs", []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(n, str) for n in pair)):
            problems.append(f"state_pairs: {pair!r} is not an [input, output] pair of names")
        elif not set(pair) <= names:
            problems.append(f"state_pairs: {pair} names a tensor the manifest does not list")
    return problems


def _from_flat_record(payload: dict[str, Any]) -> dict[str, Any]:
    """A flat record (a version-1 manifest, or what a converter gathered) in the current layout: the typed fields
    by name, the artifact's I/O from `io` (or `signature`), everything else under `details`."""
    known = {f.name for f in fields(Manifest)}
    io = payload.get("io") or payload.get("signature") or {}

    def tensors(key: str) -> list[dict[str, Any]]:
        return [TensorSpec.from_dict(t).to_dict() for t in io.get(key, []) if isinstance(t, dict) and "name" in t and "dtype" in t]

    record = {key: value for key, value in payload.items() if key in known and key != "details"}
    record["details"] = {**(payload.get("details") or {}), **{key: value for key, value in payload.items() if key not in known and key not in ("io", "signature")}}
    if payload.get("io") and payload.get("signature"):
        record["details"]["source_signature"] = payload["signature"]  # a .tflite's Keras signature: kept, not used to feed it
    record.update(
        manifest_version=MANIFEST_VERSION, inputs=tensors("inputs"), outputs=tensors("outputs"),
        sha256=payload.get("sha256") or "", size_bytes=int(payload.get("size_bytes") or 0),
        format=payload.get("format") or "", mode=payload.get("mode") or "",
    )
    return record


def manifest_from_record(record: dict[str, Any], where: str = "manifest") -> Manifest:
    """The typed Manifest for a converter's flat record (see _from_flat_record)."""
    return Manifest.from_dict(_from_flat_record(record), where=where)


def _upgrade_v1(payload: dict[str, Any]) -> dict[str, Any]:
    """Version 1 (edge-sdk 0.1 before the typed manifest): a flat dict with a `signature` and, for .tflite, `io`."""
    return {**_from_flat_record(payload), "manifest_version": 2}


# version -> function that turns a record of that version into the next one.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _upgrade_v1}


def upgrade(payload: Any, where: str = "manifest") -> dict[str, Any]:
    """Bring a manifest record of any known version up to MANIFEST_VERSION."""
    if not isinstance(payload, dict):
        raise ModelFileError(f"{where} is not a JSON object", fix="delete it and convert the model again")
    version = payload.get("manifest_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{where} has no valid manifest_version ({version!r})", fix="delete it and convert the model again")
    if version > MANIFEST_VERSION:
        raise ModelFileError(
            f"{where} is manifest version {version}; this edge-sdk reads versions up to {MANIFEST_VERSION}",
            fix="upgrade edge-sdk (pip install -U edge-sdk) on this machine",
        )
    while version < MANIFEST_VERSION:
        try:  # an old record is read before it is validated: a field of the wrong type must not be a traceback
            payload = UPGRADES[version](payload)
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            raise ModelFileError(f"{where} (manifest version {version}) is damaged: {type(error).__name__}: {error}",
                                 fix="delete it and convert the model again") from error
        version = payload["manifest_version"]
    return payload


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def read_manifest(artifact_path: Path) -> Manifest | None:
    """The manifest beside an artifact, validated and upgraded; None when there is none (a third-party model)."""
    path = manifest_path_for(artifact_path)
    if not path.exists():
        return None
    if not path.is_file():
        raise ModelFileError(f"manifest {path} is not a regular file", fix="remove it, or convert the model again")
    try:
        payload = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ModelFileError(f"manifest {path} is not valid JSON: {error}", fix="delete it and convert the model again") from error
    return Manifest.from_dict(payload, where=f"manifest {path}")


def write_manifest(artifact_path: Path, manifest: Manifest) -> Path:
    """Validate `manifest` and write it atomically beside `artifact_path`; returns the manifest's path."""
    payload = manifest.to_dict()
    problems = manifest_problems(payload)
    if problems:  # a bug of ours, not the user's: say so plainly
        raise ValueError(f"refusing to write an invalid manifest for {artifact_path}: {'; '.join(problems)}")
    path = manifest_path_for(artifact_path)
    write_json_atomic(path, payload)
    return path


def verify_artifact(artifact_path: Path, manifest: Manifest) -> str | None:
    """None when the artifact (and its external data files) are the bytes the manifest describes, else why not."""
    artifact_path = Path(artifact_path)
    if not manifest.sha256:
        return f"its manifest {manifest_path_for(artifact_path)} records no sha256 for it"
    actual = sha256_of(artifact_path)
    if actual != manifest.sha256:
        return (
            f"{artifact_path} does not match its manifest {manifest_path_for(artifact_path)} "
            f"(sha256 {actual[:12]}... on disk, {manifest.sha256[:12]}... recorded for a {manifest.format} {manifest.mode} artifact)"
        )
    for entry in manifest.external_data:
        data_path = artifact_path.parent / str(entry.get("path", ""))
        if not data_path.is_file():
            return f"{artifact_path}'s external data file {data_path} is missing"
        if entry.get("sha256") and sha256_of(data_path) != entry["sha256"]:
            return f"{artifact_path}'s external data file {data_path} does not match its manifest (sha256 differs)"
    return None
