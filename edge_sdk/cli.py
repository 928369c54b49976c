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
    convert.add_argument("--to", default="tflite", help="output format (tflite | onnx | tensorrt)")
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
    convert.add_argument("--float-nodes-from", type=Path, help="keep the layers a fallback chose in float (JSON from `edge-sdk debug --save-fallback`)")
    trt_group = convert.add_argument_group("TensorRT engines (--to tensorrt, from an ONNX model)")
    trt_group.add_argument("--workspace-mb", type=int, help="builder workspace limit in MiB (default 1024)")
    trt_group.add_argument("--timing-cache", type=Path, help="timing cache file reused between local builds")
    trt_group.add_argument("--dla-core", type=int, help="build for this DLA core (Jetson AGX/Xavier; fp16 or int8)")
    trt_group.add_argument("--target", dest="trt_target", help="target profile the engine is for, e.g. jetson-orin-nano (recorded)")
    trt_group.add_argument("--host", dest="trt_host", help="build on this device (ssh://user@jetson) and cache the engine there")
    trt_group.add_argument("--fetch-engine", action="store_true", default=None, help="with --host: copy the engine back to -o")
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
    bench.add_argument("--target", default="desktop", help="target profile (see `edge-sdk targets`)")
    trust = bench.add_argument_group("accuracy gate and self-validating latency")
    trust.add_argument("--max-drop", type=float, help="exit 10 when the 95%% upper bound of the top-1 drop vs --reference exceeds this many points")
    trust.add_argument("--latency-target", type=float, help="time until the median's 95%% interval is within this fraction, e.g. 0.01 (+-1%%)")
    trust.add_argument("--time-budget", type=float, help="seconds of adaptive timing per artifact (default 10 with --latency-target)")
    trust.add_argument("--cold-start", action="store_true", help="also time process start to first result in a fresh process")
    device = bench.add_argument_group("devices (targets reached over ssh or adb)")
    device.add_argument("--host", action="append", default=[], help="ssh://user@host[:port] or adb://SERIAL; repeat to run on several devices in parallel")
    device.add_argument("--ssh-key", type=Path, help="private key for ssh (default: ssh's own choice)")
    device.add_argument("--known-hosts", type=Path, help="known_hosts file to check host keys against (default: ~/.ssh/known_hosts)")
    device.add_argument("--accept-new-host-key", action="store_true", help="trust a host key seen for the first time (a changed key is still refused)")
    device.add_argument("--timeout", type=float, default=600.0, help="seconds one artifact may take: its worker process here, or one command on a device (default 600)")
    device.add_argument("--remote-python", help="Python interpreter on the device (default: the profile's, python3)")
    device.add_argument("--benchmark-model", help="adb: TFLite benchmark_model binary (a local file to push, or a path on the device)")
    bench.add_argument("-o", "--output", type=Path, help="write the results JSON here")
    bench.add_argument("--overwrite", action="store_true", help="replace an existing results file (and discard its unfinished .partial file)")
    bench.add_argument("--memory-limit", type=float, metavar="MIB", help="address-space limit of each artifact's worker process, in MiB")
    _add_preprocess_args(bench)
    _add_output_args(bench)

    inspect = commands.add_parser("inspect", help="show an artifact's signature, quantization, ops and manifest")
    inspect.add_argument("artifact", type=Path)
    _add_output_args(inspect)

    debug = commands.add_parser("debug", help="rank an int8 artifact's layers by quantization error; --max-drop keeps the worst in float")
    debug.add_argument("artifact", type=Path, help="int8 .tflite or QDQ .onnx artifact with its manifest")
    debug.add_argument("--reference", type=Path, required=True, help="float model: the Keras source (TFLite) or the fp32 .onnx (ONNX)")
    debug.add_argument("--data", type=Path, required=True, help="real inputs (with labels for --max-drop)")
    debug.add_argument("--samples", type=int, default=200, help="samples for the per-layer error (default 200)")
    debug.add_argument("--max-drop", type=float, help="float fallback: keep layers in float until the drop's upper bound is within this many points")
    debug.add_argument("--eval-samples", type=int, default=1000, help="fallback: samples to measure each candidate on (default 1000)")
    debug.add_argument("--fallback-dir", type=Path, help="fallback: folder for the re-quantized artifacts (default: beside the artifact)")
    debug.add_argument("--save-fallback", type=Path, help="fallback: write the chosen settings here (read by `convert --float-nodes-from`)")
    debug.add_argument("-o", "--output", type=Path, help="write the debug report (.json or .md)")
    debug.add_argument("--overwrite", action="store_true")
    _add_preprocess_args(debug)
    _add_output_args(debug)

    check = commands.add_parser("check-calib", help="compare calibration data with evaluation data before quantizing")
    check.add_argument("calibration", type=Path)
    check.add_argument("--data", type=Path, required=True, help="evaluation data")
    check.add_argument("--samples", type=int, default=1000, help="samples of each set to look at (default 1000)")
    check.add_argument("--model", type=Path, help="float model: also estimate sample-count sufficiency by re-calibrating on random subsets")
    check.add_argument("--to", default="tflite", help="format for the sufficiency estimate (tflite | onnx)")
    check.add_argument("--calib-samples", type=int, default=100, help="sufficiency: calibration samples per subset")
    check.add_argument("--subsets", type=int, default=3, help="sufficiency: number of subsets")
    _add_preprocess_args(check)
    _add_output_args(check)

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
    targets_cmd = commands.add_parser("targets", help="list target profiles (built-in and yours in YAML)",
                                      description="List target profiles. Add your own in YAML under ~/.config/edge-sdk/targets/ or $EDGE_SDK_TARGETS.")
    targets_cmd.add_argument("--json", action="store_true", help="print the profiles as JSON")

    run = commands.add_parser("run", help="the slim on-device runner: run a model on preprocessed inputs, write a results JSON",
                              description="Same as `python -m edge_sdk.runner`: imports numpy and one runtime only.")
    run.add_argument("model", type=Path, help=".tflite or .onnx model")
    run.add_argument("--inputs", type=Path, required=True, help="preprocessed samples (.npz, one array per model input)")
    run.add_argument("-o", "--output", type=Path, required=True, help="results JSON to write")
    run.add_argument("--outputs", type=Path, help="also save every sample's primary output here (.npz)")
    run.add_argument("--runtime", choices=["litert", "onnxruntime"], help="runtime (default: from the model file)")
    from edge_sdk.runner import add_settings_args

    add_settings_args(run)

    pipeline = commands.add_parser("pipeline", help="convert every model in an edge.yaml to every format, bench, and report")
    pipeline.add_argument("config", type=Path, help="pipeline file (see README: the pipeline YAML reference)")
    _add_output_args(pipeline)
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
        float_nodes=_float_nodes_from(args.float_nodes_from),
        workspace_mb=args.workspace_mb,
        timing_cache=args.timing_cache,
        dla_core=args.dla_core,
        host=args.trt_host,
        fetch_engine=args.fetch_engine,
        target=args.trt_target,
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


def _float_nodes_from(path: Path | None) -> list[str] | None:
    from edge_sdk.debug.fallback import float_nodes_from

    return float_nodes_from(path) if path else None


def _comma_list(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _cmd_bench(args: argparse.Namespace) -> int:
    from edge_sdk.api import bench
    from edge_sdk.bench import BenchSettings
    from edge_sdk.errors import UsageError
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
        max_drop_points=args.max_drop, latency_target=args.latency_target, time_budget_s=args.time_budget, cold_start=args.cold_start,
        timeout_s=args.timeout, memory_limit_bytes=int(args.memory_limit * 2**20) if args.memory_limit else None,
        runner=RunnerOptions(
            threads=args.threads, xnnpack=not args.no_xnnpack, kernels=args.kernels, reset_state=args.reset_state,
            providers=_comma_list(args.providers) or [], graph_optimization=args.graph_optimization,
        ),
    )
    checkpoint = None
    if args.host:
        from edge_sdk.api import bench_on_devices
        from edge_sdk.remote import DeviceOptions

        options = DeviceOptions(identity_file=args.ssh_key, known_hosts=args.known_hosts, accept_new_host_key=args.accept_new_host_key,
                                timeout_s=args.timeout, python=args.remote_python, benchmark_model=args.benchmark_model)
        results = bench_on_devices(
            args.artifacts, args.data, target=args.target, hosts=args.host, reference=args.reference, settings=settings, device_options=options,
            preprocess=_preprocess_from_args(args), input_key=args.input_key, label_key=args.label_key, progress=_progress(args),
        )
    else:
        from targets.profiles import get_profile

        if get_profile(args.target).transport != "local":
            raise UsageError(f"target {args.target} is reached over {get_profile(args.target).transport}: give --host", fix=f"edge-sdk bench ... --target {args.target} --host ssh://user@device")
        from edge_sdk.checkpoint import BenchCheckpoint, partial_path_for

        # Each finished result is saved at once beside -o and reused by a re-run (see edge_sdk.checkpoint).
        checkpoint = BenchCheckpoint(partial_path_for(args.output), fresh=args.overwrite) if args.output else None
        results = bench(
            args.artifacts, args.data, reference=args.reference, settings=settings, preprocess=_preprocess_from_args(args),
            input_key=args.input_key, label_key=args.label_key, progress=_progress(args), checkpoint=checkpoint,
        )
        if checkpoint and checkpoint.reused:
            print(f"resumed: {len(checkpoint.reused)} result(s) taken from {checkpoint.path} ({', '.join(checkpoint.reused)})", file=sys.stderr)
    if args.output:
        save_results(args.output, results, overwrite=args.overwrite)
        if checkpoint:
            checkpoint.remove()
    if args.json:
        print(json.dumps(results_document(results), indent=2))
    elif not args.quiet:
        print(results_table([r.to_dict() for r in results]))
        if args.output:
            print(f"results: {args.output}")
    failed = [r for r in results if r.status != "ok"]
    for result in failed:
        where = f" on {result.target['host']}" if result.target.get("host") else ""
        print(f"error: {result.artifact['path']}{where}: {result.error}", file=sys.stderr)
    if failed:
        return 1
    from edge_sdk.gate import check_gate

    check_gate(results)  # AccuracyGateError: exit 10, naming each artifact and its figures
    return 0


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


def _cmd_targets(args: argparse.Namespace) -> int:
    from targets.profiles import all_profiles

    profiles = all_profiles()
    if args.json:
        print(json.dumps([profile.to_dict() for profile in profiles.values()], indent=2))
        return 0
    width = max(len(name) for name in profiles)
    for profile in profiles.values():
        print(f"{profile.name:<{width}}  {profile.architecture:<8} {profile.transport:<5} {','.join(profile.runtimes):<28} {profile.description}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from edge_sdk.fileio import write_json_atomic
    from edge_sdk.results import results_document
    from edge_sdk.runner import run_model, settings_from_args

    result = run_model(args.model, args.inputs, settings=settings_from_args(args), runtime=args.runtime, outputs=args.outputs)
    write_json_atomic(args.output, results_document([result]))
    print(f"results: {args.output}")
    return 0


def _cmd_pipeline(args: argparse.Namespace) -> int:
    from edge_sdk.pipeline import run_pipeline

    run = run_pipeline(args.config, progress=_progress(args))
    if args.json:
        print(json.dumps({"rows": run.rows, "converted": run.converted, "conversions_cached": run.conversions_cached, "files": {k: str(v) for k, v in run.files.items()}}, indent=2))
    elif not args.quiet:
        print(f"converted {len(run.converted)}, cached {len(run.conversions_cached)}; benched {len(run.benched)}, cached {len(run.benches_cached)}")
        print(f"report: {run.files['html']}")
    return 1 if any(row["status"] != "ok" for row in run.rows) else 0


def _cmd_debug(args: argparse.Namespace) -> int:
    from edge_sdk.debug import debug_artifact
    from edge_sdk.debug.fallback import run_fallback

    preprocess = _preprocess_from_args(args)
    report = debug_artifact(args.artifact, args.reference, args.data, samples=args.samples, preprocess=preprocess, input_key=args.input_key)
    if args.output:
        report.save(args.output, overwrite=args.overwrite)
    payload: dict[str, Any] = {"debug": report.to_dict()}
    if not args.json and not args.quiet:
        print(report.to_markdown())
    if args.max_drop is None:
        if args.json:
            print(json.dumps(payload, indent=2))
        return 0
    outcome = run_fallback(report, args.data, max_drop_points=args.max_drop, output_dir=args.fallback_dir or args.artifact.parent,
                           max_samples=args.eval_samples, preprocess=preprocess, input_key=args.input_key)
    if args.save_fallback:
        outcome.save(args.save_fallback, overwrite=args.overwrite)
    payload["fallback"] = outcome.to_dict()
    print(json.dumps(payload, indent=2) if args.json else outcome.summary())
    return 0 if outcome.within_budget else 10


def _cmd_check_calib(args: argparse.Namespace) -> int:
    import tempfile

    from edge_sdk.calibcheck import check_calibration, estimate_sufficiency

    preprocess = _preprocess_from_args(args)
    check = check_calibration(args.calibration, args.data, preprocess=preprocess, input_key=args.input_key, max_samples=args.samples)
    if args.model:
        with tempfile.TemporaryDirectory(prefix="edge-sdk-calib-") as folder:
            check.sufficiency = estimate_sufficiency(args.model, args.calibration, args.data, to=args.to, preprocess=preprocess,
                                                     calibration_samples=args.calib_samples, subsets=args.subsets, workdir=Path(folder))
    print(json.dumps(check.to_dict(), indent=2) if args.json else check.to_text())
    return 4 if check.findings else 0


_COMMANDS = {"debug": _cmd_debug, "check-calib": _cmd_check_calib, "convert": _cmd_convert, "bench": _cmd_bench, "inspect": _cmd_inspect, "report": _cmd_report, "targets": _cmd_targets, "run": _cmd_run, "pipeline": _cmd_pipeline}

if __name__ == "__main__":
    sys.exit(main())
