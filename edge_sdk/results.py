"""Benchmark results: typed records, serialised to JSON with a schema version.

Reports render these records; they never recompute measurements.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk.errors import DataError
from edge_sdk.fileio import check_can_write, write_json_atomic

SCHEMA_VERSION = "1.0"


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
    from edge_sdk import __version__

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
    """Read a results file, checking the parts every reader relies on."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise DataError(f"results file {path} does not exist") from error
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"results file {path} is not valid JSON: {error}", fix="give a file written by `edge-sdk bench -o`") from error
    if not isinstance(payload, dict) or "schema_version" not in payload or not isinstance(payload.get("results"), list):
        raise DataError(f"{path} is not an edge-sdk results file (no schema_version / results list)", fix="give a file written by `edge-sdk bench -o`")
    return payload
