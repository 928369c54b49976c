"""The Python API. Every CLI command is one call of a function here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from converters.options import DataSettings, ONNXOptions, OnnxOptions, TensorRTOptions, TFLiteOptions
from edge_sdk.artifact import Artifact
from edge_sdk.bench import BenchSettings
from edge_sdk.progress import Progress
from edge_sdk.results import BenchResult

__all__ = ["DataSettings", "ONNXOptions", "OnnxOptions", "TFLiteOptions", "TensorRTOptions", "bench", "bench_on_devices", "convert", "inspect_artifact"]


def convert(
    model: str | Path | Any,
    output: str | Path,
    options: Any = None,
    *,
    data: DataSettings | None = None,
    weights: str | Path | None = None,
    trust_model: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    keep_failed: bool = False,
    **settings: Any,
) -> Artifact:
    """Convert a float model to an artifact; writes OUTPUT and OUTPUT.manifest.json.

    The artifact is validated against its source on real data (the validation or calibration data), every output
    by its kind against the format table's tolerances (edge_sdk.conversion_gate); one that fails raises
    ConversionError (exit 6) and nothing is written, or with `keep_failed=True` it is written, its manifest marked
    failed (`manifest.validation["status"] == "failed"`), and ConversionError is still raised.

    Typed: `convert(model, "m.tflite", TFLiteOptions(mode="int8"), data=DataSettings(calibration="calib.npz"))`
    with TFLiteOptions / OnnxOptions / TensorRTOptions (converters.options). The format is the options' row in
    edge_sdk.formats.

    Keywords (the same path): `convert(model, "m.onnx", to="onnx", mode="int8", calibration=..., per_channel=...)`:
    `to` (default tflite) and `mode` (default fp32), the DataSettings fields (calibration, validation_data,
    preprocess, input_key, calibration_samples, seed, input_shapes, output_kinds, allow_degenerate_calibration), any field of the format's options class,
    and `float_nodes` (layers kept in float: TFLite output tensor names, ONNX node names, as saved by
    `edge_sdk.debug.fallback`). A setting of another format is refused (exit 2) naming its format.

    `model` is a file, or for formats that take "torch" sources (tflite, onnx) also a PyTorch nn.Module or a
    `package.module:factory` spec. `weights` (a .safetensors file, an Accelerate save_model folder, a DeepSpeed
    checkpoint folder - pickles, so only with `trust_model=True` - or a plain state dict, read with
    weights_only=True) are loaded into a `module:factory` model (edge_sdk.loaders.torch_weights).
    """
    from converters.base import convert_with
    from converters.options import options_from_settings
    from edge_sdk.errors import UsageError
    from edge_sdk.formats import FORMATS, FP32

    if options is None:
        format_name = settings.pop("to", None) or "tflite"
        settings.setdefault("mode", FP32)
        options, keyword_data = options_from_settings(format_name, settings)
        if data is not None:
            raise UsageError("pass data settings either as data=DataSettings(...) or as keywords, not both")
        data = keyword_data
    elif settings:
        raise UsageError(f"typed options take no conversion keywords ({', '.join(sorted(settings))})", fix="put them in the options or in data=DataSettings(...)")
    format_name = next((name for name, spec in FORMATS.items() if isinstance(options, spec.options_type())), None)
    if format_name is None:
        raise UsageError(f"{type(options).__name__} is not the options class of a format", fix=f"use the options of one of {', '.join(FORMATS)}")
    if weights is not None:
        from edge_sdk.loaders.to_onnx import is_factory_spec
        from edge_sdk.loaders.torch_weights import TorchModelSpec

        if not is_factory_spec(model):
            raise UsageError(f"--weights applies to a PyTorch package.module:factory model, not {model}", fix="give the factory that builds the architecture, e.g. mypkg.nets:make_cnn")
        model = TorchModelSpec(str(model), Path(weights), trust_model)
    from edge_sdk.model_safety import model_code_trusted, trusting_model_code
    from edge_sdk.quiet import framework_output

    with trusting_model_code(trust_model or model_code_trusted()), framework_output(f"converting {getattr(model, 'name', model)} to {format_name} {options.mode}"):  # frameworks' logs: -v shows them
        return convert_with(format_name, model, Path(output), options, data or DataSettings(), overwrite=overwrite, progress=progress,
                            keep_failed=keep_failed)


def bench(
    artifacts: list[str | Path],
    data: str | Path,
    *,
    reference: str | Path | Any = None,
    settings: BenchSettings | None = None,
    preprocess: dict[str, Any] | None = None,
    input_key: str | None = None,
    label_key: str | None = None,
    progress: Progress | None = None,
    checkpoint: Any = None,
    reference_weights: str | Path | None = None,
    trust_model: bool = False,
) -> list[BenchResult]:
    """Benchmark artifacts on `data` against an optional float reference; see edge_sdk.bench.

    `reference` is a model file or a PyTorch `package.module:factory` (with `reference_weights`, read as convert's
    `weights`; pickled checkpoints need `trust_model`): the artifacts are then compared with the PyTorch model itself.
    `checkpoint` (an edge_sdk.checkpoint.BenchCheckpoint) saves each finished result at once and resumes from it."""
    from edge_sdk.bench import bench as run_bench
    from edge_sdk.reference_eval import reference_source

    return run_bench(
        [Path(a) for a in artifacts],
        Path(data),
        reference=reference_source(reference, reference_weights, trust_model),
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
    reference: str | Path | Any = None,
    settings: BenchSettings | None = None,
    device_options: Any = None,
    preprocess: dict[str, Any] | None = None,
    input_key: str | None = None,
    label_key: str | None = None,
    progress: Progress | None = None,
    reference_weights: str | Path | None = None,
    trust_model: bool = False,
) -> list[BenchResult]:
    """Benchmark artifacts on devices of profile `target` (one result per host and artifact); see edge_sdk.remote.
    The float reference (a model file or a PyTorch factory, as for `bench`) runs here, on the host."""
    from edge_sdk.reference_eval import reference_source
    from edge_sdk.remote import bench_on_devices as run_remote
    from targets.profiles import get_profile

    settings = settings or BenchSettings()
    profile = get_profile(target)
    settings.target = profile.name
    return run_remote(
        [Path(a) for a in artifacts], Path(data), hosts=list(hosts), profile=profile, settings=settings, options=device_options,
        reference=reference_source(reference, reference_weights, trust_model), preprocess=preprocess, input_key=input_key, label_key=label_key, progress=progress,
    )
