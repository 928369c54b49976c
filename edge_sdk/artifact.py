"""An artifact is a converted model file plus a JSON manifest beside it (`NAME.manifest.json`).

The manifest records where the artifact came from (source and sha256), how it was made (mode,
options, calibration), with what (toolchain versions), and how to feed it (signature,
quantization parameters, preprocessing spec), so any runner on any target can use it alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_sdk.errors import ModelFileError

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1


def manifest_path_for(artifact_path: Path) -> Path:
    artifact_path = Path(artifact_path)
    return artifact_path.with_name(artifact_path.name + MANIFEST_SUFFIX)


@dataclass
class Artifact:
    path: Path
    manifest: dict[str, Any]

    @property
    def format(self) -> str:
        return str(self.manifest.get("format", ""))

    @property
    def mode(self) -> str:
        return str(self.manifest.get("mode", ""))

    @property
    def preprocess(self) -> dict[str, Any] | None:
        return self.manifest.get("preprocess")


def read_manifest(artifact_path: Path) -> dict[str, Any] | None:
    """The manifest beside an artifact, or None when there is none (e.g. a third-party model)."""
    path = manifest_path_for(artifact_path)
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise ModelFileError(f"manifest {path} is not valid JSON: {error}", fix="delete it and convert again") from error
    if not isinstance(payload, dict):
        raise ModelFileError(f"manifest {path} is not a JSON object", fix="delete it and convert again")
    return payload


def load_artifact(artifact_path: Path) -> Artifact:
    artifact_path = Path(artifact_path)
    if not artifact_path.exists():
        raise ModelFileError(f"artifact {artifact_path} does not exist", fix="check the path")
    return Artifact(artifact_path, read_manifest(artifact_path) or {})
