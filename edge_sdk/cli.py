"""The `edge-sdk` command line: parse, call the Python API, print. No logic of its own."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from edge_sdk import __version__
from edge_sdk.errors import EdgeSdkError


def _add_preprocess_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("preprocessing (stored in the artifact's manifest)")
    group.add_argument("--scale", help="multiply raw values, e.g. 1/255")
    group.add_argument("--mean", help="subtract per channel, e.g. 0.485,0.456,0.406")
    group.add_argument("--std", help="divide per channel, e.g. 0.229,0.224,0.225")
    group.add_argument("--layout", choices=["NHWC", "NCHW"], help="layout the model expects")
    group.add_argument("--source-layout", choices=["NHWC", "NCHW"], help="layout of the raw arrays (images are NHWC)")
    group.add_argument("--resize", help="HEIGHT,WIDTH for image folders")
    group.add_argument("--color", choices=["rgb", "grayscale"], help="colour mode for image folders")
    group.add_argument("--preprocess", type=Path, help="JSON file with a preprocessing spec (flags override it)")
    group.add_argument("--input-key", help="name of the input array in a .npz (default: every non-label array)")


def _preprocess_from_args(args: argparse.Namespace) -> dict[str, Any]:
    from edge_sdk.data import parse_floats, parse_scale
    from edge_sdk.errors import UsageError

    spec: dict[str, Any] = {}
    if args.preprocess:
        try:
            spec.update(json.loads(Path(args.preprocess).read_text()))
        except (OSError, json.JSONDecodeError) as error:
            raise UsageError(f"--preprocess {args.preprocess} is not a readable JSON file: {error}") from error
    resize = parse_floats(args.resize, "--resize")
    overrides = {
        "scale": parse_scale(args.scale),
        "mean": parse_floats(args.mean, "--mean"),
        "std": parse_floats(args.std, "--std"),
        "layout": args.layout,
        "source_layout": args.source_layout,
        "resize": [int(v) for v in resize] if resize else None,
        "color": args.color,
    }
    spec.update({key: value for key, value in overrides.items() if value is not None})
    return spec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-sdk", description="Convert, run and measure ML models on edge targets.")
    parser.add_argument("--version", action="version", version=f"edge-sdk {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser("convert", help="convert a float model to an edge artifact")
    convert.add_argument("model", help=".keras, .h5, SavedModel folder, .onnx, .pt2, TorchScript .pt, or a PyTorch package.module:factory spec")
    convert.add_argument("--to", default="tflite", help="output format (tflite | onnx)")
    convert.add_argument("--quant", default="fp32", help="fp32 | fp16 | dynamic | int8 | int16x8")
    convert.add_argument("--calib", type=Path, help="calibration data: .npz, .npy or image folder")
    convert.add_argument("--calib-samples", type=int, default=300, help="deterministic subset of the calibration data (default 300)")
    convert.add_argument("--validate-data", type=Path, help="data to validate the artifact against its source (default: --calib)")
    convert.add_argument("--input-shape", action="append", help="concrete input shape, e.g. 1,28,28,1 or NAME:1,28,28,1")
    convert.add_argument("--allow-float-fallback", action="store_true", help="int8: keep ops without int8 kernels in float")
    onnx_group = convert.add_argument_group("ONNX Runtime quantization (--to onnx)")
    onnx_group.add_argument("--per-channel", action=argparse.BooleanOptionalAction, default=None, help="per-channel weight scales (default on)")
    onnx_group.add_argument("--quant-types", choices=["s8s8", "u8s8"], help="activation/weight integer types (default s8s8)")
    onnx_group.add_argument("--calib-method", choices=["MinMax", "Entropy", "Percentile"], help="calibration method (default MinMax)")
    onnx_group.add_argument("--exclude-nodes", help="comma-separated node names to keep in float")
    onnx_group.add_argument("--exclude-op-types", help="comma-separated op types to keep in float, e.g. Softmax,Gemm")
    convert.add_argument("--seed", type=int, default=0)
    convert.add_argument("-o", "--output", type=Path, required=True)
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output")
    _add_preprocess_args(convert)
    _add_output_args(convert)

    bench = commands.add_parser("bench", help="measure artifacts on data against a float reference")
    bench.add_argument("artifacts", type=Path, nargs="+")
    bench.add_argument("--data", type=Path, required=True, help="evaluation data: .npz, .npy or image folder")
    bench.add_argument("--reference", type=Path, help="float reference: .keras, .h5, SavedModel or .tflite")
    bench.add_argument("--runs", type=int, default=100)
    bench.add_argument("--warmup", type=int, default=10)
    bench.add_argument("--threads", type=int)
    bench.add_argument("--samples", type=int, help="evaluate a deterministic subset of this many samples")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--no-xnnpack", action="store_true", help="TFLite: disable the XNNPACK delegate")
    bench.add_argument("--kernels", choices=["default", "reference"], default="default", help="TFLite kernels (reference kernels can differ slightly in int8)")
    bench.add_argument("--reset-state", action="store_true", help="reset state variables before every sample (LSTMs)")
    bench.add_argument("--providers", help="ONNX Runtime execution providers in order, e.g. CUDA,CPU (default CPU)")
    bench.add_argument("--graph-optimization", choices=["disable", "basic", "extended", "all"], default="all", help="ONNX Runtime graph optimisation level")
    bench.add_argument("--label-key", help="name of the label array in a .npz")
    bench.add_argument("--target", default="desktop")
    bench.add_argument("-o", "--output", type=Path, help="write the results JSON here")
    bench.add_argument("--overwrite", action="store_true", help="replace an existing results file")
    _add_preprocess_args(bench)
    _add_output_args(bench)

    inspect = commands.add_parser("inspect", help="show an artifact's signature, quantization, ops and manifest")
    inspect.add_argument("artifact", type=Path)
    _add_output_args(inspect)

    report = commands.add_parser(
        "report", help="render results files as HTML or Markdown, or compare two of them (exit 9 on a regression)",
        description="Render results JSON files as one self-contained HTML report or a Markdown report. With --compare BASELINE NEW, "
        "print what changed per artifact and exit with code 9 when a threshold is crossed (0 otherwise).",
    )
    report.add_argument("results", type=Path, nargs="*", help="results files written by `edge-sdk bench -o`")
    report.add_argument("-o", "--output", type=Path, help="report file; the format follows its suffix (.html, .md)")
    report.add_argument("--format", choices=["html", "md"], help="report format (default: from --output's suffix)")
    report.add_argument("--max-drop", type=float, help="accuracy drop budget in points: warn about artifacts above it")
    report.add_argument("--overwrite", action="store_true", help="replace an existing report")
    report.add_argument("--compare", type=Path, nargs=2, metavar=("BASELINE", "NEW"), help="compare two results files")
    report.add_argument("--max-latency-regression", help="compare: fail when p50 latency grows by more than this, e.g. 10%%")
    report.add_argument("--max-accuracy-drop", type=float, help="compare: fail when top-1 accuracy falls by more than this many points")
    return parser


def _add_output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress, no table")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter drowns the table; real errors still surface as exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except EdgeSdkError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _progress(args: argparse.Namespace) -> Any:
    from edge_sdk.progress import Progress

    return Progress(enabled=not (args.quiet or args.json))


def _cmd_convert(args: argparse.Namespace) -> int:
    from edge_sdk.api import convert
    from edge_sdk.models import parse_input_shapes

    artifact = convert(
        args.model,
        args.output,
        to=args.to,
        mode=args.quant,
        calibration=args.calib,
        calibration_samples=args.calib_samples,
        validation_data=args.validate_data,
        preprocess=_preprocess_from_args(args),
        input_shapes=parse_input_shapes(args.input_shape),
        input_key=args.input_key,
        seed=args.seed,
        allow_float_fallback=args.allow_float_fallback,
        per_channel=args.per_channel,
        quant_types=args.quant_types,
        calibration_method=args.calib_method,
        exclude_nodes=_comma_list(args.exclude_nodes),
        exclude_op_types=_comma_list(args.exclude_op_types),
        overwrite=args.overwrite,
        progress=_progress(args),
    )
    manifest = artifact.manifest
    if args.json:
        print(json.dumps({"artifact": str(artifact.path), "manifest": manifest}, indent=2))
    elif not args.quiet:
        validation = manifest.get("validation", {})
        print(
            f"wrote {artifact.path} ({manifest['size_bytes']} bytes, {manifest['mode']}, "
            f"{100 * manifest['integer_op_share']:.0f}% of compute ops in integer, "
            f"validation {validation.get('status')}"
            + (f": cosine {validation['cosine_mean']:.5f}, top-1 agreement {100 * validation['top1_agreement']:.1f}%" if validation.get("status") == "passed" else "")
            + f") in {manifest['conversion_seconds']:.1f} s"
        )
    return 0


def _comma_list(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _cmd_bench(args: argparse.Namespace) -> int:
    from edge_sdk.api import bench
    from edge_sdk.bench import BenchSettings
    from edge_sdk.fileio import check_can_write
    from edge_sdk.results import results_document, save_results
    from edge_sdk.tables import results_table
    from targets.runners.base import RunnerOptions

    if args.output:
        check_can_write(args.output, args.overwrite, "results file")
    settings = BenchSettings(
        runs=args.runs,
        warmup=args.warmup,
        max_samples=args.samples,
        seed=args.seed,
        target=args.target,
        runner=RunnerOptions(
            threads=args.threads, xnnpack=not args.no_xnnpack, kernels=args.kernels, reset_state=args.reset_state,
            providers=_comma_list(args.providers) or [], graph_optimization=args.graph_optimization,
        ),
    )
    results = bench(
        args.artifacts, args.data, reference=args.reference, settings=settings, preprocess=_preprocess_from_args(args),
        input_key=args.input_key, label_key=args.label_key, progress=_progress(args),
    )
    if args.output:
        save_results(args.output, results, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(results_document(results), indent=2))
    elif not args.quiet:
        print(results_table([r.to_dict() for r in results]))
        if args.output:
            print(f"results: {args.output}")
    failed = [r for r in results if r.status != "ok"]
    for result in failed:
        print(f"error: {result.artifact['path']}: {result.error}", file=sys.stderr)
    return 1 if failed else 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from edge_sdk.api import inspect_artifact
    from edge_sdk.tables import inspection_text

    info = inspect_artifact(args.artifact)
    print(json.dumps(info, indent=2) if args.json else inspection_text(info))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from edge_sdk.errors import UsageError
    from edge_sdk.report import WarningPolicy, compare_files, parse_percent, write_report

    if args.compare:
        if args.results or args.output:
            raise UsageError("--compare takes exactly BASELINE and NEW and prints its table", fix="drop the other results files and -o")
        comparison = compare_files(
            *args.compare, max_latency_regression_percent=parse_percent(args.max_latency_regression),
            max_accuracy_drop_points=args.max_accuracy_drop,
        )
        print(comparison.to_markdown())
        comparison.raise_for_regressions()
        return 0
    if not args.results or not args.output:
        raise UsageError("report needs results files and -o", fix="edge-sdk report results.json -o report.html")
    written = write_report(args.results, args.output, fmt=args.format, policy=WarningPolicy(max_drop_points=args.max_drop), overwrite=args.overwrite)
    print(f"report: {written}")
    return 0


_COMMANDS = {"convert": _cmd_convert, "bench": _cmd_bench, "inspect": _cmd_inspect, "report": _cmd_report}

if __name__ == "__main__":
    sys.exit(main())
