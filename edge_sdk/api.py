"""The Python API. Every CLI command is one call of a function here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_sdk.artifact import Artifact
from edge_sdk.bench import BenchSettings
from edge_sdk.data import Dataset, PreprocessSpec
from edge_sdk.progress import Progress
from edge_sdk.results import BenchResult


def convert(
    model: str | Path | Any,
    output: str | Path,
    *,
    to: str = "tflite",
    mode: str = "fp32",
    calibration: str | Path | None = None,
    calibration_samples: int | None = 300,
    validation_data: str | Path | None = None,
    preprocess: PreprocessSpec | dict[str, Any] | None = None,
    input_shapes: dict[str, list[int]] | None = None,
    input_key: str | None = None,
    seed: int = 0,
    allow_float_fallback: bool = False,
    per_channel: bool | None = None,
    quant_types: str | None = None,
    calibration_method: str | None = None,
    exclude_nodes: list[str] | None = None,
    exclude_op_types: list[str] | None = None,
    workspace_mb: int | None = None,
    timing_cache: str | Path | None = None,
    dla_core: int | None = None,
    host: str | None = None,
    fetch_engine: bool | None = None,
    target: str | None = None,
    float_nodes: list[str] | None = None,
    allow_degenerate_calibration: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Artifact:
    """Convert a float model to an artifact of format `to` in `mode`; writes OUTPUT and OUTPUT.manifest.json.

    `model` is a file, or for `to="onnx"` also a PyTorch nn.Module or a `package.module:factory` spec.
    `per_channel`, `quant_types` (s8s8|u8s8), `calibration_method` (MinMax|Entropy|Percentile),
    `exclude_nodes` and `exclude_op_types` are ONNX Runtime quantization settings (`to="onnx"`).
    `workspace_mb`, `timing_cache`, `dla_core`, `host` (ssh://user@jetson: build and cache there), `fetch_engine`
    and `target` are TensorRT settings (`to="tensorrt"`, from an ONNX file).
    `float_nodes` keeps layers in float (TFLite: output tensor names; ONNX: node names), as saved by
    `edge_sdk.debug.fallback` (`edge-sdk convert --float-nodes-from fallback.json`).
    """
    from converters import converter_module
    from edge_sdk.errors import UsageError
    from edge_sdk.loaders.to_onnx import is_factory_spec

    spec = preprocess if isinstance(preprocess, PreprocessSpec) else PreprocessSpec.from_dict(preprocess)
    module = converter_module(to)
    calibration_set = Dataset(Path(calibration), spec, input_key=input_key) if calibration else None
    validation_set = Dataset(Path(validation_data), spec, input_key=input_key) if validation_data else None
    # All-zero or constant data calibrates and validates nothing (edge_sdk.data_sanity): refused unless allowed.
    from edge_sdk.data_sanity import check_informative

    subset = calibration_set.subset(calibration_samples, seed) if calibration_set else None
    check_informative(calibration_set, subset, "calibration", allow_degenerate_calibration)
    check_informative(validation_set, validation_set.subset(100, seed + 1) if validation_set else None, "validation", allow_degenerate_calibration)
    onnx_settings = {
        "per_channel": per_channel, "quant_types": quant_types, "calibration_method": calibration_method,
        "exclude_nodes": exclude_nodes, "exclude_op_types": exclude_op_types,
    }
    given = {key: value for key, value in onnx_settings.items() if value is not None}
    if given and to != "onnx":
        raise UsageError(f"{', '.join(sorted(given))} apply to --to onnx only, not {to}")
    tensorrt_settings = {
        "workspace_mb": workspace_mb, "timing_cache": Path(timing_cache) if timing_cache else None, "dla_core": dla_core,
        "host": host, "fetch_engine": fetch_engine, "target": target,
    }
    tensorrt_given = {key: value for key, value in tensorrt_settings.items() if value is not None}
    if tensorrt_given and to != "tensorrt":
        raise UsageError(f"{', '.join(sorted(tensorrt_given))} apply to --to tensorrt only, not {to}")
    given.update(tensorrt_given)
    if float_nodes and to == "onnx":
        given["exclude_nodes"] = sorted(set(given.get("exclude_nodes") or []) | set(float_nodes))
    elif float_nodes:
        given["float_nodes"] = list(float_nodes)
    source = Path(model) if isinstance(model, (str, Path)) and not is_factory_spec(model) else model
    if not isinstance(source, Path) and to != "onnx":
        raise UsageError(f"a PyTorch model (nn.Module or module:factory spec) converts with --to onnx, not {to}")
    options = module.options_for(
        mode=mode, calibration_samples=calibration_samples, seed=seed, input_shapes=input_shapes, allow_float_fallback=allow_float_fallback, **given
    )
    return module.convert(  # type: ignore[no-any-return]
        source, Path(output), options, calibration_set, validation=validation_set, preprocess=spec, overwrite=overwrite, progress=progress
    )


def bench(
    artifacts: list[str | Path],
    data: str | Path,
    *,
    reference: str | Path | None = None,
    settings: BenchSettings | None = None,
    preprocess: dict[str, Any] | None = None,
    input_key: str | None = None,
    label_key: str | None = None,
    progress: Progress | None = None,
    checkpoint: Any = None,
) -> list[BenchResult]:
    """Benchmark artifacts on `data` against an optional float reference; see edge_sdk.bench.

    `checkpoint` (an edge_sdk.checkpoint.BenchCheckpoint) saves each finished result at once and resumes from it."""
    from edge_sdk.bench import bench as run_bench

    return run_bench(
        [Path(a) for a in artifacts],
        Path(data),
        reference=Path(reference) if reference else None,
        settings=settings,
        preprocess=preprocess,
        input_key=input_key,
        label_key=label_key,
        progress=progress,
        checkpoint=checkpoint,
    )


def inspect_artifact(path: str | Path) -> dict[str, Any]:
    """Signature, quantization parameters, ops and manifest of an artifact."""
    from edge_sdk.inspection import inspect_artifact as _inspect

    return _inspect(Path(path))


def bench_on_devices(
    artifacts: list[str | Path],
    data: str | Path,
    *,
    target: str,
    hosts: list[str],
    reference: str | Path | None = None,
    settings: BenchSettings | None = None,
    device_options: Any = None,
    preprocess: dict[str, Any] | None = None,
    input_key: str | None = None,
    label_key: str | None = None,
    progress: Progress | None = None,
) -> list[BenchResult]:
    """Benchmark artifacts on devices of profile `target` (one result per host and artifact); see edge_sdk.remote."""
    from edge_sdk.remote import bench_on_devices as run_remote
    from targets.profiles import get_profile

    settings = settings or BenchSettings()
    profile = get_profile(target)
    settings.target = profile.name
    return run_remote(
        [Path(a) for a in artifacts], Path(data), hosts=list(hosts), profile=profile, settings=settings, options=device_options,
        reference=Path(reference) if reference else None, preprocess=preprocess, input_key=input_key, label_key=label_key, progress=progress,
    )
