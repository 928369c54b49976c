"""The I/O model's part of a bench (edge_sdk.bench): outputs split per sample, streaming evaluation of stateful
models, what an artifact's manifest declares about its I/O (and the artifact record of a result), and the data
checks that stop wrong figures."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_sdk._lazy import require
from edge_sdk.detections import DetectionLayout
from edge_sdk.errors import DataError, ModelFileError
from edge_sdk.fileio import gzip_size_of, sha256_of, size_of
from edge_sdk.io_model import checked_infer, per_sample_rows  # noqa: F401 - re-exported for bench
from edge_sdk.models import detect_model_kind

if TYPE_CHECKING:  # edge_sdk.bench imports this module: its BenchSettings / Evaluation are `Any` here (no import circle)
    from edge_sdk.artifact import Artifact
    from edge_sdk.data import Dataset
    from targets.runners.base import BaseRunner


def add_streaming(evaluation: Any, runner: BaseRunner, dataset: Dataset, indices: list[int] | None, settings: Any) -> None:
    """For a stateful model (state pairs given, or found from names and shapes) and data with sequences, evaluate
    again with the model carrying its own state (edge_sdk.streaming)."""
    from edge_sdk.streaming import check_state_pairs, detect_state_pairs, evaluate_streaming

    inputs = [(spec.name, spec.dims or spec.shape) for spec in runner.inputs]
    outputs = [(spec.name, spec.dims or spec.shape) for spec in runner.outputs]
    pairs = list(settings.state_pairs) or detect_state_pairs(inputs, outputs)
    check_state_pairs(pairs, [name for name, _ in inputs], [name for name, _ in outputs])
    evaluation.state_pairs = pairs or None
    if pairs and dataset.sequence_ids is not None:
        evaluation.streaming_outputs = evaluate_streaming(runner, dataset, indices, pairs, settings.batch_axes)


def with_manifest_io(settings: Any, manifest: Any) -> Any:
    """`settings` completed with what the artifact's manifest declares (batch axes, output kinds, state pairs);
    what the user gave on the command line wins."""
    if manifest is None or manifest.format != "onnx":
        return settings  # other formats' manifests may name tensors differently from their runtime (TFLite's serving_default_...)
    batch_axes = {tensor.name: tensor.batch_axis for tensor in manifest.inputs if tensor.name not in settings.batch_axes and tensor.batch_axis != 0}
    given = settings.output_kinds
    # The detection layouts and thresholds given to convert (`--output-kind NAME:detections:...`) are recorded among
    # the manifest's options; a detections kind without its layout would be inferred again, so it needs them.
    recorded = (manifest.options or {}).get("output_kinds") or {}
    try:
        layouts = {name: DetectionLayout.from_dict(record) for name, record in (recorded.get("detection_layouts") or {}).items() if name not in given.kinds}
        thresholds = {name: float(value) for name, value in (recorded.get("thresholds") or {}).items()}
    except (AttributeError, TypeError, ValueError, IndexError) as error:  # a hand-edited manifest: one message, no traceback
        raise ModelFileError(f"the artifact's manifest records damaged output kinds (options.output_kinds: {error})",
                             fix="convert the model again, or give the kinds with --output-kind") from error
    kinds = {tensor.name: tensor.kind for tensor in manifest.outputs if tensor.kind and (tensor.kind != "detections" or tensor.name in layouts)}
    output_kinds = dataclasses.replace(given, kinds={**kinds, **given.kinds}, detection_layouts={**layouts, **given.detection_layouts},
                                       thresholds={**thresholds, **given.thresholds})
    state_pairs = settings.state_pairs or [(pair[0], pair[1]) for pair in manifest.state_pairs]
    return dataclasses.replace(settings, batch_axes={**batch_axes, **settings.batch_axes}, output_kinds=output_kinds, state_pairs=state_pairs)


def preprocess_overrides(manifest_preprocess: dict[str, Any] | None, overrides: dict[str, Any]) -> list[str]:
    """The bench flags that change the preprocessing the artifact's manifest declares ("scale: 0.00392 -> 1.0")."""
    declared = manifest_preprocess or {}
    return [f"{key}: {declared.get(key)!r} -> {value!r}" for key, value in sorted(overrides.items())
            if value is not None and key in declared and declared.get(key) is not None and declared.get(key) != value]


def check_labels(labels: np.ndarray, classes: int) -> None:
    """Labels outside the output's classes would score 0 % without a word: refuse them (exit 4)."""
    outside = (labels < 0) | (labels >= classes)
    if outside.any():
        raise DataError(
            f"{int(outside.sum())} of {len(labels)} labels are outside the model's {classes} classes (0..{classes - 1}), e.g. {int(labels[outside][0])}",
            fix="check the label array (--label-key) belongs to this data and model, and counts classes from 0",
        )


def describe_artifact(artifact: Artifact, io: dict[str, Any]) -> dict[str, Any]:
    """The artifact part of a result: what the file is (from its manifest, or guessed from its I/O without one)."""
    path, manifest = artifact.path, artifact.manifest
    fmt = (manifest.format if manifest else "") or detect_model_kind(path)
    mode = (manifest.mode if manifest else "") or _guess_precision(io)
    data_files = [path.parent / str(entry.get("path", "")) for entry in (manifest.external_data if manifest else [])]
    if manifest is None and fmt == "onnx":
        # No manifest to list them: the graph itself names its external data files (a 24 KB graph may hold 1.6 MB).
        from edge_sdk.loaders.onnx_intake import external_data_files

        onnx = require("onnx", "reading .onnx files")
        data_files = [path.parent / name for name in external_data_files(onnx.load(str(path), load_external_data=False))]
    external = sum(size_of(data) for data in data_files if data.is_file())
    return {
        "path": str(path),
        "name": path.name,
        "format": fmt,
        "mode": mode,
        "has_manifest": manifest is not None,
        "verified": artifact.verified,
        "verification": artifact.verification_problem,
        # Kept by `convert --keep-failed` although it failed validation: run and reported, flagged everywhere.
        "validation_failed": bool(manifest and manifest.failed_validation),
        "validation_failures": list((manifest.validation or {}).get("failures") or []) if manifest and manifest.failed_validation else [],
        "manifest_warnings": list(manifest.warnings) if manifest else [],
        "size_bytes": size_of(path) + external,
        "gzip_size_bytes": gzip_size_of(path) if path.is_file() else None,
        # A verified artifact's bytes were just hashed against its manifest: that hash, not a second pass.
        "sha256": manifest.sha256 if artifact.verified and manifest is not None else sha256_of(path),
        "io": io,
    }


def _guess_precision(io: dict[str, Any]) -> str:
    """Without a manifest: the input's integer type names the precision, else 'float'."""
    dtype = io["inputs"][0]["dtype"] if io["inputs"] else "float32"
    from edge_sdk.formats import PRECISION_OF_INPUT_DTYPE, UNKNOWN_FLOAT

    return PRECISION_OF_INPUT_DTYPE.get(dtype, UNKNOWN_FLOAT)
