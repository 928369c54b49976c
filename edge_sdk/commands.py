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
        allow_degenerate_calibration=args.allow_degenerate_calibration,
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
            + f") in {manifest.conversion_seconds or 0.0:.1f} s"
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
    from edge_sdk.io_args import input_shapes_from_args, io_settings_from_args
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
        verify=not args.no_verify,
        timeout_s=args.timeout, memory_limit_bytes=int(args.memory_limit * 2**20) if args.memory_limit else None,
        runner=RunnerOptions(
            threads=args.threads, xnnpack=not args.no_xnnpack, kernels=args.kernels, reset_state=args.reset_state,
            providers=_comma_list(args.providers) or [], graph_optimization=args.graph_optimization,
            input_shapes=input_shapes_from_args(args),
        ),
        **io_settings_from_args(args),
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
        from edge_sdk.fidelity import output_lines

        for line in output_lines([r.to_dict() for r in results]):  # every output by its kind (edge_sdk.fidelity)
            print(f"  {line}")
        if args.output:
            print(f"results: {args.output}")
    _warn_about_artifacts(results)
    failed = [r for r in results if r.status != "ok"]
    for result in failed:
        where = f" on {result.target['host']}" if result.target.get("host") else ""
        print(f"error: {result.artifact['path']}{where}: {result.error}", file=sys.stderr)
    if failed:
        return failed_exit_code(results)
    reference_failure = next((r.reference for r in results if (r.reference or {}).get("status") == "error"), None)
    if reference_failure is not None:  # once, however many artifacts it was to be compared with
        print(f"error: the reference {reference_failure['path']} failed, so nothing was compared with it: {reference_failure['error']}", file=sys.stderr)
        return int(reference_failure.get("exit_code") or 1)
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
    for result in results:
        artifact = result.artifact
        if result.status == "ok" and artifact.get("has_manifest") is False:
            print(f"warning: {artifact['name']} has no manifest: its preprocessing is unknown (the data was fed as given, or as bench flags say)", file=sys.stderr)
        for change in (result.data or {}).get("preprocess_overrides") or []:
            print(f"warning: {artifact['name']}: a bench flag overrides the preprocessing its manifest declares ({change})", file=sys.stderr)
        if result.status == "ok" and artifact.get("verified") is False:
            print(f"warning: {artifact['name']} is unverified: {artifact.get('verification')}", file=sys.stderr)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from edge_sdk.api import inspect_artifact
    from edge_sdk.tables import inspection_text

    info = inspect_artifact(args.artifact)
    print(json.dumps(info, indent=2) if args.json else inspection_text(info))
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
    report = debug_artifact(args.artifact, args.reference, args.data, samples=args.samples, preprocess=preprocess, input_key=args.input_key, verify=not args.no_verify)
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


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"debug": _cmd_debug, "check-calib": _cmd_check_calib, "convert": _cmd_convert, "bench": _cmd_bench, "inspect": _cmd_inspect, "report": _cmd_report, "targets": _cmd_targets, "run": _cmd_run, "pipeline": _cmd_pipeline}
