"""An artifact is a converted model file plus a typed manifest beside it (`NAME.manifest.json`).

The manifest (edge_sdk.manifest) records where the artifact came from, how it was made, with what, how to
feed it, and the sha256 of the bytes it describes. Loading an artifact checks those bytes: a manifest that
describes another file (an fp32 model copied behind an int8 manifest) is refused unless verification is off,
and then the artifact is marked unverified wherever it is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_sdk.errors import ModelFileError
from edge_sdk.manifest import MANIFEST_SUFFIX, MANIFEST_VERSION, Manifest, manifest_path_for, read_manifest, verify_artifact

__all__ = ["MANIFEST_SUFFIX", "MANIFEST_VERSION", "Artifact", "Manifest", "load_artifact", "manifest_path_for", "read_manifest"]


@dataclass
class Artifact:
    """A model file and its manifest (None for a third-party model). `verified` is True when the file's sha256
    matched the manifest, False when the check was skipped (--no-verify) or failed, None without a manifest."""

    path: Path
    manifest: Manifest | None
    verified: bool | None = None
    verification_problem: str | None = None

    @property
    def format(self) -> str:
        return self.manifest.format if self.manifest else ""

    @property
    def mode(self) -> str:
        return self.manifest.mode if self.manifest else ""

    @property
    def preprocess(self) -> dict | None:  # type: ignore[type-arg]
        return self.manifest.preprocess if self.manifest else None


def load_artifact(artifact_path: Path, verify: bool = True) -> Artifact:
    """The artifact at `artifact_path` with its manifest; with `verify`, a sha256 mismatch is a ModelFileError (exit 3)."""
    artifact_path = Path(artifact_path)
    if not artifact_path.exists():
        raise ModelFileError(f"artifact {artifact_path} does not exist", fix="check the path")
    manifest = read_manifest(artifact_path)
    if manifest is None:
        return Artifact(artifact_path, None)
    problem = verify_artifact(artifact_path, manifest) if artifact_path.is_file() else None
    if problem and verify:
        raise ModelFileError(problem, fix="convert the model again to get a matching manifest, or pass --no-verify to run it anyway (marked unverified)")
    if not verify:
        return Artifact(artifact_path, manifest, verified=False, verification_problem=problem or "not checked (--no-verify)")
    return Artifact(artifact_path, manifest, verified=True)
