"""The slim on-device runner: `python -m edge_sdk.runner MODEL --inputs INPUTS.npz --output RESULT.json`.

It loads a model with exactly one runtime (ai-edge-litert / tflite-runtime for .tflite, onnxruntime for .onnx),
runs every sample of INPUTS.npz once (already preprocessed by the host, arrays named after the data's inputs),
times `--runs` calls after `--warmup`, and writes a results document in the same schema as `edge-sdk bench`,
with the device description (edge_sdk.device_info). `--outputs OUTPUTS.npz` also saves the primary output of
every sample, so the host computes accuracy and fidelity exactly as a local bench does. The measurement settings
come from flags or, as a remote bench sends them, from `--settings settings.json` (edge_sdk.measurement).

Imports numpy, the standard library, the light edge_sdk modules and one runtime: never TensorFlow, torch or a
converter (tests/test_runner_entry.py checks it). `--check-runtime NAME` only imports the runtime and prints its
version as JSON (exit 5 when it is missing), which the host runs before pushing a model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge_sdk.errors import EdgeSdkError, MissingDependencyError, UsageError

RUNTIME_CHOICES = ("litert", "onnxruntime")
OUTPUTS_KEY = "outputs"


def check_runtime(runtime: str) -> dict[str, Any]:
    """Import `runtime` and return its package and version; MissingDependencyError when it is absent."""
    import platform

    try:
        import numpy
    except ImportError as error:
        raise MissingDependencyError(f"numpy not installed: {error}", fix="pip install 'edge-sdk[pi]'") from error
    if runtime == "litert":
        from targets.runners.litert import import_tflite_runtime

        _, package, version = import_tflite_runtime()
    elif runtime == "onnxruntime":
        from targets.runners.onnxruntime import import_onnxruntime

        package, version = "onnxruntime", import_onnxruntime().__version__
    else:
        raise UsageError(f"--check-runtime {runtime!r} must be one of {', '.join(RUNTIME_CHOICES)}")
    return {"runtime": runtime, "package": package, "version": version, "numpy": numpy.__version__,
            "python": platform.python_version(), "architecture": platform.machine()}


def run_model(model: Path, inputs: Path, *, settings: Any = None, runtime: str | None = None, outputs: Path | None = None) -> Any:
    """Evaluate and time `model` on the preprocessed samples in `inputs`; returns a BenchResult.

    `settings` is an edge_sdk.bench.BenchSettings (max_samples is ignored: the host chose the samples; see
    edge_sdk.measurement for how flags and `--settings` JSON become one).
    """

    from edge_sdk.artifact import load_artifact
    from edge_sdk.bench import BenchSettings, describe_artifact, evaluate, time_runs
    from edge_sdk.data import Dataset, PreprocessSpec
    from edge_sdk.device_info import describe_device
    from edge_sdk.environment import reset_peak_rss, rss_bytes
    from edge_sdk.progress import Progress
    from edge_sdk.results import BenchResult
    from edge_sdk import metrics
    from targets.runners import runner_class, runner_for

    settings = settings or BenchSettings()
    artifact = load_artifact(Path(model), verify=settings.verify)
    dataset = Dataset(Path(inputs), PreprocessSpec(dtype=_stored_dtype(Path(inputs))))
    runner = runner_class(runtime)(Path(model), settings.runner) if runtime else runner_for(Path(model), settings.runner)
    progress = Progress(enabled=False)
    reset_peak_rss()
    rss_before, _ = rss_bytes()
    with runner:
        evaluation = evaluate(runner, dataset, None, progress, f"evaluate {Path(model).name}", batch_axes=settings.batch_axes)
        latencies_ms = time_runs(runner, dataset, settings, progress, Path(model).name)
        description = runner.describe()
        io = {"inputs": [s.to_dict() for s in runner.inputs], "outputs": [s.to_dict() for s in runner.outputs]}
    _, peak_rss = rss_bytes()
    if outputs is not None:
        from edge_sdk.fileio import save_npz_atomic

        # Every output by its name (one row per sample); `outputs` stays the primary one, as remote benches read it.
        named = {name: value for name, value in (evaluation.all_outputs or {}).items() if name != OUTPUTS_KEY}
        save_npz_atomic(Path(outputs), {**named, OUTPUTS_KEY: evaluation.outputs})
    return BenchResult(
        artifact=describe_artifact(artifact, io),
        target={"name": settings.target, "transport": "local", "host": None},
        data={**dataset.describe(), "evaluated_samples": int(evaluation.outputs.shape[0])},
        settings={**settings.to_dict(), "runtime": description},
        environment=describe_device(),
        timing={
            "load_ms": (runner.load_time_s or 0.0) * 1000.0,
            "first_inference_ms": evaluation.first_inference_ms,
            "latency": metrics.latency_stats(latencies_ms),
            "latencies_ms": [round(value, 6) for value in latencies_ms],
        },
        memory={"peak_rss_bytes": peak_rss, "rss_increase_bytes": max(0, peak_rss - rss_before)},
    )


def run_model_in_worker(request: tuple[Path, Path, dict[str, Any]], phase: Any = None) -> Any:
    """`run_model(model, inputs, **options)` as an edge_sdk.isolation target: `edge-sdk run` calls it in a worker
    process, so a runtime that crashes on the model becomes an error naming the file."""
    model, inputs, options = request
    if phase is not None:
        phase("loading")  # the worker names what it was doing when it crashed
    return run_model(model, inputs, **options)


def _stored_dtype(path: Path) -> str:
    """The dtype the host stored the inputs in, so the identity preprocessing keeps it."""
    import zipfile

    from numpy.lib import format as npy_format

    try:
        with zipfile.ZipFile(path) as archive:
            first = sorted(name for name in archive.namelist() if name.endswith(".npy"))[0]
            with archive.open(first) as handle:
                version = npy_format.read_magic(handle)
                read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
                return str(read_header(handle)[2])
    except (OSError, zipfile.BadZipFile, IndexError, ValueError):
        return "float32"  # Dataset reports the real problem with the file


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m edge_sdk.runner", description="Run one model on preprocessed inputs and write a results JSON.")
    add_runner_args(parser)
    return parser


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """Every option of the runner: `python -m edge_sdk.runner` and `edge-sdk run` both build their parser with this."""
    from edge_sdk.measurement import add_measurement_args

    parser.add_argument("model", type=Path, nargs="?", help=".tflite or .onnx model")
    parser.add_argument("--inputs", type=Path, help="preprocessed samples (.npz, one array per model input)")
    parser.add_argument("-o", "--output", type=Path, help="results JSON to write (or --json: print it)")
    parser.add_argument("--json", action="store_true", help="print the results JSON on stdout (with or without -o)")
    parser.add_argument("--outputs", type=Path, help="also save every output of every sample here (.npz: one array per output name, and `outputs`, the primary one)")
    parser.add_argument("--runtime", choices=RUNTIME_CHOICES, help="runtime to use (default: from the model file)")
    parser.add_argument("--settings", type=Path, help="measurement settings as JSON (edge_sdk/schemas/settings.schema.json); flags override it")
    parser.add_argument("--check-runtime", choices=RUNTIME_CHOICES, help="only check that this runtime imports; print its version")
    add_measurement_args(parser, io=True)


def run_from_args(args: argparse.Namespace, isolate: bool = False) -> dict[str, Any]:
    """Run the model the parsed runner options name, write the results JSON to -o when given; returns the document.
    With `isolate` (`edge-sdk run`), the model runs in a worker process (edge_sdk.isolation): a crash becomes an
    error naming it."""
    from edge_sdk.fileio import write_json_atomic
    from edge_sdk.measurement import settings_from_args
    from edge_sdk.results import results_document

    if args.model is None or args.inputs is None or (args.output is None and not args.json):
        raise UsageError("the runner needs MODEL, --inputs and -o/--output (or --json)", fix="python -m edge_sdk.runner model.tflite --inputs in.npz -o result.json")
    settings = settings_from_args(args)
    if isolate:
        from edge_sdk.isolation import IsolationLimits, run_isolated

        options = {"settings": settings, "runtime": args.runtime, "outputs": args.outputs}
        result = run_isolated("edge_sdk.runner:run_model_in_worker", (args.model, args.inputs, options), label=Path(args.model).name,
                              limits=IsolationLimits(timeout_s=None))
    else:
        result = run_model(args.model, args.inputs, settings=settings, runtime=args.runtime, outputs=args.outputs)
    document = results_document([result])
    if args.output is not None:
        write_json_atomic(args.output, document)
    return document


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.check_runtime:
            print(json.dumps(check_runtime(args.check_runtime)))
            return 0
        document = run_from_args(args)
        if args.json:
            print(json.dumps(document, indent=2))
        return 0
    except MissingDependencyError as error:
        print(json.dumps({"error": error.message, "fix": error.fix}))
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except EdgeSdkError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
