"""What each `edge-sdk` command does once its arguments are parsed: one call of the Python API, then print.

edge_sdk/cli.py builds the parser and dispatches here; heavy modules are imported inside each command.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_sdk.commands_quantization import cmd_check_calib, cmd_debug
from edge_sdk.preprocess_args import preprocess_from_args


def _progress(args: argparse.Namespace) -> Any:
    from edge_sdk.progress import Progress

    return Progress(enabled=not (args.quiet or args.json))


def _cmd_convert(args: argparse.Namespace) -> int:
    from edge_sdk.api import convert
    from edge_sdk.formats import FORMATS
    from edge_sdk.models import parse_input_shapes

    format_settings: dict[str, Any] = {}
    for spec in FORMATS.values():  # every format's flags the user gave; convert refuses those of another format
        format_settings.update(spec.argument_group().parse(args))
    artifact = convert(
        args.model,
        args.output,
        to=args.to,
        mode=args.quant,
        calibration=args.calib,
        calibration_samples=args.calib_samples,
        validation_data=args.validate_data,
        preprocess=preprocess_from_args(args),
        input_shapes=parse_input_shapes(args.input_shape),
        input_key=args.input_key,
        seed=args.seed,
        float_nodes=_float_nodes_from(args.float_nodes_from),
        weights=args.weights,
        trust_model=args.trust_model,
        allow_degenerate_calibration=args.allow_degenerate_calibration,
        output_kinds=args.output_kind,
        keep_failed=args.keep_failed,
        overwrite=args.overwrite,
        progress=_progress(args),
        **format_settings,
    )
    manifest = artifact.manifest
    assert manifest is not None  # a converter always writes one
    if args.json:
        print(json.dumps({"artifact": str(artifact.path), "manifest": manifest.to_dict()}, indent=2))
    elif not args.quiet:
        validation = manifest.validation or {}
        passed = validation.get("status") == "passed"
        print(
            f"wrote {artifact.path} ({manifest.size_bytes} bytes, {manifest.mode}, "
            f"{100 * (manifest.integer_op_share or 0.0):.0f}% of compute ops in integer, "
            f"validation {validation.get('status')}"
            + (f": cosine {validation['cosine_mean']:.5f}" if passed and validation.get("cosine_mean") is not None else "")
            + (f", top-1 agreement {100 * validation['top1_agreement']:.1f}%" if passed and validation.get("top1_agreement") is not None else "")
            + (f", SQNR {validation['sqnr_db']:.1f} dB" if passed and validation.get("sqnr_db") is not None else "")
            + (f", matched-detection recall {100 * validation['detection_recall']:.1f}%" if passed and validation.get("detection_recall") is not None else "")
            + f") in {manifest.conversion_seconds or 0.0:.1f} s"
        )
    return 0


def _float_nodes_from(path: Path | None) -> list[str] | None:
    from edge_sdk.debug.fallback import float_nodes_from

    return float_nodes_from(path) if path else None


def _comma_list(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _cmd_bench(args: argparse.Namespace) -> int:
    """With -o: refuse a folder that cannot be written, and a results file another bench is writing, before any work."""
    from edge_sdk.fileio import check_writable_folder, output_lock

    if not args.output:
        return _bench(args)
    check_writable_folder(args.output.parent, "results folder")
    with output_lock(args.output, "results file"):
        return _bench(args)


def _bench(args: argparse.Namespace) -> int:
    from edge_sdk.api import bench
    from edge_sdk.errors import UsageError
    from edge_sdk.fileio import check_can_write
    from edge_sdk.measurement import settings_from_args
    from edge_sdk.results import results_document, save_results
    from edge_sdk.tables import results_table, verdict_summary
    from edge_sdk.io_args import io_settings_from_args

    if args.output:
        check_can_write(args.output, args.overwrite, "results file")
    settings = settings_from_args(
        args, max_samples=args.samples, seed=args.seed,
        max_drop_points=args.max_drop, latency_target=args.latency_target, time_budget_s=args.time_budget, cold_start=args.cold_start,
        timeout_s=args.timeout, memory_limit_bytes=int(args.memory_limit * 2**20) if args.memory_limit else None,
        # The I/O model's host-only settings (fidelity by output kind, state pairs); --batch-axis and --input-shape
        # are measurement settings (edge_sdk.measurement), sent to a device with the rest.
        **{key: value for key, value in io_settings_from_args(args).items() if key != "batch_axes"},
    )
    checkpoint = None
    if args.host:
        from edge_sdk.api import bench_on_devices
        from edge_sdk.remote import DeviceOptions

        options = DeviceOptions(identity_file=args.ssh_key, known_hosts=args.known_hosts, accept_new_host_key=args.accept_new_host_key,
                                timeout_s=args.timeout, python=args.remote_python, benchmark_model=args.benchmark_model)
        results = bench_on_devices(
            args.artifacts, args.data, target=settings.target, hosts=args.host, reference=args.reference, settings=settings, device_options=options,
            reference_weights=args.reference_weights, trust_model=args.trust_model,
            preprocess=preprocess_from_args(args), input_key=args.input_key, label_key=args.label_key, progress=_progress(args),
        )
    else:
        from targets.profiles import get_profile

        if get_profile(settings.target).transport != "local":
            raise UsageError(f"target {settings.target} is reached over {get_profile(settings.target).transport}: give --host", fix=f"edge-sdk bench ... --target {settings.target} --host ssh://user@device")
        from edge_sdk.checkpoint import BenchCheckpoint, partial_path_for

        # Each finished result is saved at once beside -o and reused by a re-run (see edge_sdk.checkpoint).
        checkpoint = BenchCheckpoint(partial_path_for(args.output), fresh=args.overwrite) if args.output else None
        progress = _progress(args)
        progress.begin(len(args.artifacts))  # on a terminal: artifact k/N with an ETA
        try:
            results = bench(
                args.artifacts, args.data, reference=args.reference, settings=settings, preprocess=preprocess_from_args(args),
                input_key=args.input_key, label_key=args.label_key, progress=progress, checkpoint=checkpoint,
                reference_weights=args.reference_weights, trust_model=args.trust_model,
            )
        finally:
            progress.end()
        if checkpoint and checkpoint.reused:
            print(f"resumed: {len(checkpoint.reused)} result(s) taken from {checkpoint.path} ({', '.join(checkpoint.reused)})", file=sys.stderr)
    if args.output:
        save_results(args.output, results, overwrite=args.overwrite)
        if checkpoint:
            checkpoint.remove()
    if args.json:
        print(json.dumps(results_document(results), indent=2))
    elif not args.quiet:
        records = [r.to_dict() for r in results]
        print(results_table(records))
        from edge_sdk.fidelity import output_lines

        for line in output_lines(records):  # every output by its kind (edge_sdk.fidelity)
            print(f"  {line}")
        print()
        print(verdict_summary(records, args.max_drop))
        if args.output:
            print(f"results: {args.output}")
    _warn_about_artifacts(results)
    failed = [r for r in results if r.status != "ok"]
    for result in failed:
        where = f" on {result.target['host']}" if result.target.get("host") else ""
        print(f"error: {result.artifact['path']}{where}: {result.error}", file=sys.stderr)
    if failed:
        return failed_exit_code(results)
    from edge_sdk.gate import check_gate

    check_gate(results)  # AccuracyGateError: exit 10, naming each artifact and its figures
    return 0


def failed_exit_code(results: list[Any]) -> int:
    """Exit code of a bench with failed artifacts: when nothing ran and every artifact failed for the same kind of
    reason, that reason's code (e.g. 3: an artifact that does not match its manifest); otherwise 1."""
    codes = {getattr(r, "exit_code", None) for r in results}
    if all(r.status != "ok" for r in results) and len(codes) == 1 and None not in codes:
        return int(codes.pop())  # type: ignore[arg-type]
    return 1


def _warn_about_artifacts(results: list[Any]) -> None:
    from edge_sdk.report.warnings import artifact_warnings

    for result in results:
        artifact = result.artifact
        if result.status == "ok" and artifact.get("has_manifest") is False:
            print(f"warning: {artifact['name']} has no manifest: its preprocessing is unknown (the data was fed as given, or as bench flags say)", file=sys.stderr)
        for change in (result.data or {}).get("preprocess_overrides") or []:
            print(f"warning: {artifact['name']}: a bench flag overrides the preprocessing its manifest declares ({change})", file=sys.stderr)
        if result.status == "ok" and artifact.get("verified") is False:
            print(f"warning: {artifact['name']} is unverified: {artifact.get('verification')}", file=sys.stderr)
        for line in artifact_warnings(artifact):
            print(f"warning: {artifact['name']} {line}", file=sys.stderr)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from edge_sdk.api import inspect_artifact
    from edge_sdk.loaders.to_onnx import is_factory_spec
    from edge_sdk.tables import inspection_text

    from edge_sdk.quiet import framework_output

    if is_factory_spec(str(args.artifact)):  # a PyTorch package.module:factory: describe its module (issue 14)
        return _inspect_factory(args)
    if args.weights or args.input_shape:
        from edge_sdk.errors import UsageError

        raise UsageError("--input-shape and --weights apply to inspecting a PyTorch package.module:factory, not an artifact")
    from edge_sdk.model_safety import trusting_model_code

    # A Keras .h5 / .keras is read from its config; --trust-model lets one with code-carrying layers (Lambda) be read.
    with framework_output(f"reading {args.artifact}"), trusting_model_code(bool(getattr(args, "trust_model", False))):
        info = inspect_artifact(args.artifact)
    print(json.dumps(info, indent=2) if args.json else inspection_text(info))
    return 0


def _inspect_factory(args: argparse.Namespace) -> int:
    from edge_sdk.loaders.torch_weights import TorchModelSpec, describe_factory
    from edge_sdk.models import parse_input_shapes

    from edge_sdk.quiet import framework_output

    with framework_output(f"describing {args.artifact}"):
        described = describe_factory(TorchModelSpec(str(args.artifact), args.weights, args.trust_model), parse_input_shapes(args.input_shape))
    weights = described["weights"]
    print(json.dumps(described, indent=2) if args.json else "\n".join([
        f"{described['path']}  (PyTorch {described['module']}, {described['parameters']} parameters)",
        *[f"input  {t['name']} {t['shape']} {t['dtype']}" for t in described["inputs"]],
        *[f"output {t['name']} {t['shape']} {t['dtype']}" for t in described["outputs"]],
        *([f"weights: {weights['kind']} {weights['path']} ({weights['tensors']} tensors)"] if weights else []),
    ]))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from edge_sdk.errors import UsageError
    from edge_sdk.report import (
        WarningPolicy,
        compare_files,
        parse_percent,
        write_report,
    )

    if args.compare:
        if args.results or args.output:
            raise UsageError("--compare takes exactly BASELINE and NEW and prints its table", fix="drop the other results files and -o")
        comparison = compare_files(
            *args.compare, max_latency_regression_percent=parse_percent(args.max_latency_regression),
            max_accuracy_drop_points=args.max_accuracy_drop,
        )
        print(comparison.to_text())  # plain names in a terminal; `to_markdown()` is for a pull request
        comparison.raise_for_regressions()
        return 0
    if not args.results:
        raise UsageError("report needs one or more results files", fix="edge-sdk report results.json [-o report.html]")
    policy = WarningPolicy(max_drop_points=args.max_drop)
    if args.json:
        from edge_sdk.report import report_document

        print(json.dumps(report_document(args.results, policy), indent=2))
        return 0
    output = args.output or Path(args.results[0]).with_name("report.md" if args.format == "md" else "report.html")
    if any(Path(path).resolve() == Path(output).resolve() for path in args.results):
        raise UsageError(f"-o {output} is also one of the results files read; it would be overwritten", fix="write the report to another file, e.g. report.html")
    written = write_report(args.results, output, fmt=args.format, policy=policy, overwrite=args.overwrite)
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
    from edge_sdk.runner import check_runtime, run_from_args

    from edge_sdk.quiet import framework_output

    if args.check_runtime:
        print(json.dumps(check_runtime(args.check_runtime)))
        return 0
    # In a worker process, like bench's artifacts: a runtime that crashes on the model is reported naming the file.
    with framework_output(f"running {args.model}"):
        document = run_from_args(args, isolate=True)
    from edge_sdk.report.warnings import artifact_warnings

    for result in document.get("results") or []:  # an artifact kept by --keep-failed runs, flagged
        artifact = result.get("artifact") or {}
        for line in artifact_warnings(artifact):
            print(f"warning: {artifact.get('name')} {line}", file=sys.stderr)
    print(json.dumps(document, indent=2) if args.json else f"results: {args.output}")
    return 0


def _cmd_completion(args: argparse.Namespace) -> int:
    """The parser is the CLI's (edge_sdk.cli passes it in `args.parser`): commands never import the CLI back."""
    from edge_sdk._lazy import require

    shtab = require("shtab", "shell completion")
    print(shtab.complete(args.parser, shell=args.shell))
    return 0


def _cmd_pipeline(args: argparse.Namespace) -> int:
    from edge_sdk.pipeline import run_pipeline

    run = run_pipeline(args.config, progress=_progress(args))
    if args.json:
        print(json.dumps({"rows": run.rows, "converted": run.converted, "conversions_cached": run.conversions_cached, "files": {k: str(v) for k, v in run.files.items()}}, indent=2))
    elif not args.quiet:
        print(f"converted {len(run.converted)}, cached {len(run.conversions_cached)}; benched {len(run.benched)}, cached {len(run.benches_cached)}")
        print(f"report: {run.files['html']}")
        print()
        print(run.verdict)
    return 1 if any(row["status"] != "ok" for row in run.rows) else 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"debug": cmd_debug, "check-calib": cmd_check_calib, "convert": _cmd_convert, "bench": _cmd_bench, "inspect": _cmd_inspect, "report": _cmd_report, "targets": _cmd_targets, "run": _cmd_run, "pipeline": _cmd_pipeline, "completion": _cmd_completion}


def _cmd_serve(args: argparse.Namespace) -> int:
    from edge_sdk.serve.cli_args import serve_options_from_args
    from edge_sdk.serve.server import serve_artifacts

    options, listen = serve_options_from_args(args)
    return serve_artifacts(args.artifacts, names=args.name, options=options, listen=listen)


def _cmd_loadtest(args: argparse.Namespace) -> int:
    from edge_sdk.serve.loadtest import run_loadtest
    from edge_sdk.serve.server import read_token

    result = run_loadtest(args.url, model=args.model, concurrency=args.concurrency, duration_s=args.duration, warmup_s=args.warmup,
                          samples=args.inputs, binary=not args.json_tensors, token=read_token(args.token_file))
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.summary())
    return 0 if result.errors == 0 else 1


COMMANDS["serve"] = _cmd_serve
COMMANDS["loadtest"] = _cmd_loadtest
