"""The quantization-troubleshooting commands, `edge-sdk debug` and `edge-sdk check-calib`, once their arguments are
parsed (edge_sdk/commands.py dispatches the others; heavy modules are imported inside each command)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge_sdk.preprocess_args import preprocess_from_args


def cmd_debug(args: argparse.Namespace) -> int:
    """`edge-sdk debug`: rank the layers by quantization error; with --max-drop, search a float fallback."""
    from edge_sdk.debug import debug_artifact, failed_validation_note
    from edge_sdk.debug.fallback import check_max_float_share, run_fallback
    from edge_sdk.io_args import input_shapes_from_args
    from edge_sdk.debug.torch_reference import check_fallback_reference
    from edge_sdk.quiet import framework_output
    from edge_sdk.reference_eval import reference_source

    preprocess = preprocess_from_args(args)
    reference = reference_source(args.reference, args.reference_weights, args.trust_model)
    if args.max_drop is not None:
        check_max_float_share(args.max_float_share)
        check_fallback_reference(reference)  # before any work
    note = failed_validation_note(args.artifact) if args.artifact.exists() else None
    if note:  # printed here, before the framework output is captured (a print inside the capture would be swallowed)
        print(f"note: {note}", file=sys.stderr)
    with framework_output(f"ranking the layers of {args.artifact}"):
        report = debug_artifact(args.artifact, reference, args.data, samples=args.samples, preprocess=preprocess, input_key=args.input_key, verify=not args.no_verify,
                                input_shapes=input_shapes_from_args(args))
    if args.output:
        report.save(args.output, overwrite=args.overwrite)
    payload: dict[str, Any] = {"debug": report.to_dict()}
    if not args.json and not args.quiet:
        print(report.to_markdown())
    if args.max_drop is None:
        if args.json:
            print(json.dumps(payload, indent=2))
        return 0
    with framework_output(f"searching a float fallback for {args.artifact}"):
        outcome = run_fallback(report, args.data, max_drop_points=args.max_drop, output_dir=args.fallback_dir or args.artifact.parent,
                               max_samples=args.eval_samples, preprocess=preprocess, input_key=args.input_key,
                               max_float_share=args.max_float_share, overwrite=args.overwrite)
    if not outcome.viable and outcome.stopped:
        print(f"note: int8 is not viable here for {args.artifact.name}: {outcome.stopped}", file=sys.stderr)
    if args.save_fallback:
        outcome.save(args.save_fallback, overwrite=args.overwrite)
    payload["fallback"] = outcome.to_dict()
    print(json.dumps(payload, indent=2) if args.json else outcome.summary())
    # 0 when an artifact meets the budget (int8 with layers in float, or int16x8 once int8 is not viable; the JSON
    # says which: `viable`, `result_mode`), 10 (the accuracy gate's code) when none does.
    return 0 if outcome.within_budget else 10


def cmd_check_calib(args: argparse.Namespace) -> int:
    """`edge-sdk check-calib`: compare calibration with evaluation data; with a model, estimate sufficiency."""
    import tempfile

    from edge_sdk.calibcheck import check_calibration, estimate_sufficiency
    from edge_sdk.io_args import input_shapes_from_args
    from edge_sdk.quiet import framework_output
    from edge_sdk.reference_eval import reference_source

    preprocess = preprocess_from_args(args)
    if args.input_shape and not args.model:
        from edge_sdk.errors import UsageError

        raise UsageError("--input-shape applies to the sufficiency estimate, which needs the float model", fix="add --reference MODEL, or leave --input-shape out")
    model = reference_source(args.model, args.reference_weights, args.trust_model)  # a file or a PyTorch factory: refused before any work
    check = check_calibration(args.calibration, args.data, preprocess=preprocess, input_key=args.input_key, max_samples=args.samples)
    if model:
        with tempfile.TemporaryDirectory(prefix="edge-sdk-calib-") as folder, framework_output(f"estimating calibration sufficiency with {args.model}"):
            check.sufficiency = estimate_sufficiency(model, args.calibration, args.data, to=args.to, preprocess=preprocess,
                                                     calibration_samples=args.calib_samples, subsets=args.subsets, workdir=Path(folder),
                                                     input_shapes=input_shapes_from_args(args) or None)
    print(json.dumps(check.to_dict(), indent=2) if args.json else check.to_text())
    return 4 if check.findings else 0
