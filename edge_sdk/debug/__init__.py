"""Quantization debugging: per-layer error for TFLite and ONNX int8 artifacts in one report format
(`debug_artifact`), and automatic float fallback of the most sensitive layers (`edge_sdk.debug.fallback`).

Heavy runtimes are imported inside the format modules, only when a debug runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_sdk.debug.report import DebugReport, LayerError

__all__ = ["DebugReport", "LayerError", "debug_artifact"]


def debug_artifact(artifact: str | Path, reference: str | Path | Any, data: str | Path, *, samples: int = 200, seed: int = 0, preprocess: dict[str, Any] | None = None, input_key: str | None = None, verify: bool = True) -> DebugReport:
    """Per-layer quantization error of `artifact` against its float `reference` on real `data`, ranked.

    `reference` is a model file or a PyTorch model (edge_sdk.loaders.torch_weights.TorchModelSpec: ONNX artifacts
    only, see edge_sdk.debug.torch_reference). With `verify` (the default), an artifact whose sha256 does not match its
    manifest is refused (exit 3)."""
    from edge_sdk.artifact import load_artifact
    from edge_sdk.errors import UsageError
    from edge_sdk.models import detect_model_kind

    load_artifact(Path(artifact), verify=verify)

    kind = detect_model_kind(Path(artifact))
    if hasattr(reference, "factory"):  # a PyTorch model
        from edge_sdk.debug.torch_reference import debug_against_pytorch

        return debug_against_pytorch(Path(artifact), reference, Path(data), kind=kind, samples=samples, seed=seed, preprocess=preprocess, input_key=input_key)
    if kind == "tflite":
        from edge_sdk.debug.tflite import debug_tflite

        return debug_tflite(Path(artifact), Path(reference), Path(data), samples=samples, seed=seed, preprocess=preprocess, input_key=input_key)
    if kind == "onnx":
        from edge_sdk.debug.onnx import debug_onnx

        return debug_onnx(Path(artifact), Path(reference), Path(data), samples=samples, seed=seed, preprocess=preprocess, input_key=input_key)
    raise UsageError(f"cannot debug {artifact}: {kind} artifacts are not supported", fix="debug a .tflite or .onnx int8 artifact")
