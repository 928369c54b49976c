"""Quantization debugging: per-layer error for TFLite and ONNX int8 artifacts in one report format
(`debug_artifact`), and automatic float fallback of the most sensitive layers (`edge_sdk.debug.fallback`).

Heavy runtimes are imported inside the format modules, only when a debug runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_sdk.debug.report import DebugReport, LayerError

__all__ = ["DebugReport", "LayerError", "debug_artifact", "failed_validation_note"]


def debug_artifact(artifact: str | Path, reference: str | Path | Any, data: str | Path, *, samples: int = 200, seed: int = 0, preprocess: dict[str, Any] | None = None,
                   input_key: str | None = None, verify: bool = True, input_shapes: dict[str, list[int]] | None = None) -> DebugReport:
    """Per-layer quantization error of `artifact` against its float `reference` on real `data`, ranked.

    `reference` is a model file or a PyTorch model (edge_sdk.loaders.torch_weights.TorchModelSpec: ONNX artifacts
    only, see edge_sdk.debug.torch_reference). With `verify` (the default), an artifact whose sha256 does not match
    its manifest is refused (exit 3). An artifact kept although it failed conversion validation (`convert
    --keep-failed`) is debugged - that is what it was kept for - with a note first among the report's notes
    (`failed_validation_note`). `input_shapes` (--input-shape; the name '' means the only input) fix the
    reference's dynamic dims where the manifest's recorded shapes do not say them."""
    from edge_sdk.artifact import load_artifact

    load_artifact(Path(artifact), verify=verify)
    report = _debug(Path(artifact), reference, Path(data), samples, seed, preprocess, input_key, input_shapes)
    note = failed_validation_note(Path(artifact))
    if note:
        report.notes.insert(0, note)
    return report


def failed_validation_note(artifact: Path) -> str | None:
    """One line when `artifact`'s manifest records a failed conversion validation (`convert --keep-failed`), else
    None. The CLI prints it on stderr; `debug_artifact` puts it first among the report's notes."""
    from edge_sdk.manifest import read_manifest

    manifest = read_manifest(Path(artifact))
    if manifest is None or not manifest.failed_validation:
        return None
    validation = manifest.validation or {}
    figures = ", ".join(f"{key} {validation[key]:.4g}" for key in ("cosine_mean", "sqnr_db") if isinstance(validation.get(key), (int, float)))
    return f"{Path(artifact).name} failed conversion validation ({figures or 'see its manifest'}); debugging it anyway"


def _debug(artifact: Path, reference: str | Path | Any, data: Path, samples: int, seed: int, preprocess: dict[str, Any] | None, input_key: str | None,
           input_shapes: dict[str, list[int]] | None) -> DebugReport:
    from edge_sdk.errors import UsageError
    from edge_sdk.models import detect_model_kind

    kind = detect_model_kind(Path(artifact))
    if hasattr(reference, "factory"):  # a PyTorch model
        from edge_sdk.debug.torch_reference import debug_against_pytorch

        return debug_against_pytorch(Path(artifact), reference, Path(data), kind=kind, samples=samples, seed=seed, preprocess=preprocess, input_key=input_key,
                                     input_shapes=input_shapes)
    if kind == "tflite":
        from edge_sdk.debug.tflite import debug_tflite

        return debug_tflite(Path(artifact), Path(reference), Path(data), samples=samples, seed=seed, preprocess=preprocess, input_key=input_key, input_shapes=input_shapes)
    if kind == "onnx":
        from edge_sdk.debug.onnx import debug_onnx

        return debug_onnx(Path(artifact), Path(reference), Path(data), samples=samples, seed=seed, preprocess=preprocess, input_key=input_key, input_shapes=input_shapes)
    raise UsageError(f"cannot debug {artifact}: {kind} artifacts are not supported", fix="debug a .tflite or .onnx int8 artifact")
