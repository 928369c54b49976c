"""Benchmark results: typed records, serialised to JSON with a schema version.

Reports render these records; they never recompute measurements.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from edge_sdk.errors import DataError
from edge_sdk.fileio import check_can_write, write_json_atomic

SCHEMA_VERSION = "1.1"


@dataclass
class BenchResult:
    """One (artifact, target, data) measurement. Times in ms, sizes in bytes, accuracy as a fraction."""

    artifact: dict[str, Any]
    target: dict[str, Any]
    data: dict[str, Any]
    settings: dict[str, Any]
    environment: dict[str, Any]
    status: str = "ok"
    error: str | None = None
    # The exit code of the error that stopped this artifact (edge_sdk.errors), when status is "error".
    exit_code: int | None = None
    timing: dict[str, Any] | None = None
    memory: dict[str, Any] | None = None
    accuracy: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None
    created_at: str = field(default_factory=lambda: now_iso())

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["schema_version"] = SCHEMA_VERSION
        return payload


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def results_document(results: list[BenchResult]) -> dict[str, Any]:
    from edge_sdk.version import __version__

    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "edge-sdk", "version": __version__},
        "created_at": now_iso(),
        "results": [result.to_dict() for result in results],
    }


def save_results(path: Path, results: list[BenchResult], overwrite: bool = False) -> None:
    """Write a results file atomically; refuses to replace an existing one without `overwrite`."""
    check_can_write(Path(path), overwrite, "results file")
    write_json_atomic(Path(path), results_document(results))


def load_results(path: Path) -> dict[str, Any]:
    """Read a results file, upgrade an older schema version to SCHEMA_VERSION, and validate it against the
    published schema (edge_sdk/schemas/results.schema.json); a file that does not match is a DataError
    naming the file and the first offending field."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise DataError(f"results file {path} is not a regular file (a folder, FIFO, socket or device)", fix="give a file written by `edge-sdk bench -o`")
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise DataError(f"results file {path} does not exist") from error
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise DataError(f"results file {path} is not valid JSON: {error}", fix="give a file written by `edge-sdk bench -o`") from error
    if not isinstance(payload, dict) or "schema_version" not in payload or not isinstance(payload.get("results"), list):
        raise DataError(f"{path} is not an edge-sdk results file (no schema_version / results list)", fix="give a file written by `edge-sdk bench -o`")
    payload = upgrade_document(payload, path)
    validate_document(payload, path)
    return payload


# Older schema versions this release reads: each entry turns a document of that version into the next
# version (`from_version: (to_version, upgrade)`), so a chain of upgrades ends at SCHEMA_VERSION.
# "1.0" is the first published version, so the chain is empty today; a change that renames or moves a
# field bumps SCHEMA_VERSION and adds the step from the previous version here.
def _upgrade_1_0(payload: dict[str, Any]) -> dict[str, Any]:
    """1.0 -> 1.1: artifacts gained `verified` (sha256 checked against the manifest); 1.0 results were never checked."""
    for result in payload.get("results", []):
        if isinstance(result, dict) and isinstance(result.get("artifact"), dict):
            result["artifact"].setdefault("verified", None)
    return payload


UPGRADES: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {"1.0": ("1.1", _upgrade_1_0)}


def upgrade_document(payload: dict[str, Any], path: Path) -> dict[str, Any]:
    """Bring a results document to SCHEMA_VERSION. A newer minor version of the same major version only adds
    fields, so it is read as it is; a newer major version or an unknown one is refused."""
    version = str(payload["schema_version"])
    seen = {version}
    while version != SCHEMA_VERSION:
        if version in UPGRADES:
            version, upgrade = UPGRADES[version]
            payload = upgrade(payload)
            payload["schema_version"] = version
            for result in payload.get("results", []):
                if isinstance(result, dict):
                    result["schema_version"] = version
            if version in seen:
                raise DataError(f"results schema upgrade loops at version {version} while reading {path}")
            seen.add(version)
            continue
        if _same_major_newer_minor(version, SCHEMA_VERSION):
            return payload
        raise DataError(
            f"results file {path} has schema_version {version!r}; this edge-sdk reads {sorted({SCHEMA_VERSION, *UPGRADES})}",
            fix="upgrade edge-sdk to read it, or re-run `edge-sdk bench -o` with this version",
        )
    return payload


def _same_major_newer_minor(version: str, current: str) -> bool:
    try:
        major, minor = (int(part) for part in version.split("."))
        current_major, current_minor = (int(part) for part in current.split("."))
    except ValueError:
        return False
    return major == current_major and minor > current_minor


def results_schema() -> dict[str, Any]:
    """The published JSON Schema of a results document."""
    from importlib import resources

    return json.loads((resources.files("edge_sdk") / "schemas" / "results.schema.json").read_text())


def validate_document(payload: dict[str, Any], path: Path) -> None:
    """Raise DataError naming the file and the first field (in document order) that breaks the schema."""
    from edge_sdk._lazy import require

    jsonschema = require("jsonschema", "validating results files")
    validator = jsonschema.Draft202012Validator(results_schema())
    errors = sorted(validator.iter_errors(payload), key=lambda error: [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path])
    if errors:
        first = errors[0]
        field_name = _field_path(first.absolute_path) or "(the document)"
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise DataError(
            f"results file {path} does not match results schema {SCHEMA_VERSION}: field {field_name}: {first.message}{more}",
            fix="give a file written by `edge-sdk bench -o`; the schema is edge_sdk/schemas/results.schema.json",
        )
    _check_finite_timings(payload, path)


# Timings that gates compare: NaN compares false with every limit, so a NaN would pass every gate (fail open).
_FINITE_TIMINGS = ("load_ms", "first_inference_ms")
_FINITE_LATENCIES = ("min_ms", "mean_ms", "std_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms")


def _check_finite_timings(payload: dict[str, Any], path: Path) -> None:
    for index, result in enumerate(payload.get("results", [])):
        timing = result.get("timing") if isinstance(result, dict) else None
        if not isinstance(timing, dict):
            continue
        latency = timing.get("latency") if isinstance(timing.get("latency"), dict) else {}
        figures = [(f"timing.{key}", timing.get(key)) for key in _FINITE_TIMINGS]
        figures += [(f"timing.latency.{key}", latency.get(key)) for key in _FINITE_LATENCIES]
        figures += [(f"timing.latencies_ms[{i}]", value) for i, value in enumerate(timing.get("latencies_ms") or [])]
        for name, value in figures:
            if isinstance(value, float) and not math.isfinite(value):
                raise DataError(
                    f"results file {path} does not match results schema {SCHEMA_VERSION}: field results[{index}].{name} is {value}, not a finite number",
                    fix="give a file written by `edge-sdk bench -o`; a NaN or infinite latency is never measured",
                )


def _field_path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
