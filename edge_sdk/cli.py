"""The `edge-sdk` command line: parse, call the Python API, print. No logic of its own."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from edge_sdk.version import __version__
from edge_sdk.commands import COMMANDS
from edge_sdk.preprocess_args import add_preprocess_args
from edge_sdk.errors import EdgeSdkError
from edge_sdk.formats import FORMATS, FP32, all_modes
from edge_sdk.measurement import add_measurement_args
from edge_sdk.runner import add_runner_args
from edge_sdk.io_args import add_io_args


class _HelpFormatter(argparse.HelpFormatter):
    """Every flag's help ends with its default, where it has one worth saying (not None, not False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, [], argparse.SUPPRESS) and "default" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


class _DeprecatedAlias(argparse.Action):
    """An old flag name that still works, with a note on stderr naming the new one (the first option string)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object, option_string: str | None = None) -> None:
        if option_string and option_string != self.option_strings[0]:
            print(f"note: {option_string} is deprecated; use {self.option_strings[0]}", file=sys.stderr)
        setattr(namespace, self.dest, values)


# Help for flags declared without one (declared here so the argument lines themselves stay as they are).
_MISSING_HELP = {
    "--seed": "seed of every random choice (sample subsets, bootstrap intervals)",
    "--output": "file to write", "--overwrite": "replace an existing output",
    "--runs": "timed runs per artifact", "--warmup": "untimed runs before timing", "--threads": "runtime threads (default: the runtime's own choice)",
    "--kernels": "TFLite kernels (reference kernels can differ slightly in int8)", "--reset-state": "reset state variables before every sample (LSTMs)",
    "--graph-optimization": "ONNX Runtime graph optimisation level",
    "artifacts": "artifacts to measure (.tflite, .onnx, .engine)", "artifact": "artifact to read (.tflite or .onnx)",
    "calibration": "calibration data: .npz, .npy or image folder",
}


def _fill_missing_help(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _fill_missing_help(sub)
        elif not action.help:
            names = [name for name in action.option_strings if name.startswith("--")] or [action.dest]
            action.help = next((_MISSING_HELP[name] for name in names if name in _MISSING_HELP), None)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edge-sdk", description="Convert, run and measure ML models on edge targets.")
    parser.add_argument("--version", action="version", version=f"edge-sdk {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    convert = commands.add_parser("convert", help="convert a float model to an edge artifact")
    convert.add_argument("model", help=".keras, .h5, SavedModel folder, .onnx, .pt2, TorchScript .pt, or a PyTorch package.module:factory spec")
    convert.add_argument("--to", default="tflite", choices=list(FORMATS), help=f"output format ({' | '.join(FORMATS)})")
    # Checked by the chosen format's options (one clear error naming that format's modes), not by argparse.
    convert.add_argument("--quant", default=FP32, metavar="{" + ",".join(all_modes()) + "}",
                         help="mode; " + "; ".join(f"{name}: {' | '.join(spec.modes)}" for name, spec in FORMATS.items()))
    convert.add_argument("--calib", type=Path, help="calibration data: .npz, .npy or image folder")
    convert.add_argument("--calib-samples", type=int, default=300, help="deterministic subset of the calibration data (default 300)")
    convert.add_argument("--validate-data", type=Path, help="data to validate the artifact against its source (default: --calib)")
    convert.add_argument("--input-shape", action="append", help="concrete input shape, e.g. 1,28,28,1 or NAME:1,28,28,1")
    torch_group = convert.add_argument_group("PyTorch sources (module:factory, .pt2) and checkpoints")
    torch_group.add_argument("--weights", type=Path, help="trained weights for a module:factory model: .safetensors, Accelerate save_model folder, DeepSpeed checkpoint folder, .pt/.bin state dict")
    torch_group.add_argument("--trust-model", action="store_true",
                             help="the one trust flag: let code carried by a model file run (Keras Lambda layers in .h5, py_function SavedModels, pickled checkpoints such as DeepSpeed's)")
    convert.add_argument("--allow-degenerate-calibration", action="store_true", help="go on with all-zero or constant calibration / validation data (with a warning kept in the manifest)")
    convert.add_argument("--keep-failed", action="store_true", help="keep an artifact that fails validation, its manifest marked failed, for `edge-sdk debug` (still exit 6)")
    convert.add_argument("--output-kind", action="append", metavar="NAME:KIND",
                         help="what an output is, for validation by kind: class_scores | values | dense_map | sequence | state | "
                              "detections:boxes=0-3,scores=4-,layout=CN (default: inferred from shape and values)")
    convert.add_argument("--float-nodes-from", type=Path, help="keep the layers a fallback chose in float (JSON from `edge-sdk debug --save-fallback`)")
    for spec in FORMATS.values():  # each format's own flags, from its row in the format table
        spec.argument_group().add(convert)
    convert.add_argument("--seed", type=int, default=0)
    convert.add_argument("-o", "--output", type=Path, required=True)
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output")
    add_preprocess_args(convert)
    _add_output_args(convert)

    bench = commands.add_parser("bench", help="measure artifacts on data against a float reference")
    bench.add_argument("artifacts", type=Path, nargs="+")
    bench.add_argument("--data", type=Path, required=True, help="evaluation data: .npz, .npy or image folder")
    bench.add_argument("--reference", help="float reference: .keras, .h5, SavedModel, .onnx, .tflite, or a PyTorch package.module:factory")
    bench.add_argument("--samples", type=int, help="evaluate a deterministic subset of this many samples")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--label-key", help="name of the label array in a .npz")
    add_measurement_args(bench)
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
    add_preprocess_args(bench)
    add_io_args(bench)
    _add_output_args(bench)

    inspect = commands.add_parser("inspect", help="show an artifact's signature, quantization, ops and manifest")
    inspect.add_argument("artifact", type=Path, help="an artifact, or a PyTorch package.module:factory (with --input-shape)")
    inspect.add_argument("--input-shape", action="append", help="PyTorch factory: example input shape, e.g. 1,3,224,224")
    inspect.add_argument("--weights", type=Path, help="PyTorch factory: checkpoint to load (as for convert)")
    inspect.add_argument("--trust-model", action="store_true", help="PyTorch factory: allow pickled checkpoints (DeepSpeed); Keras .h5 / .keras: read a model with code-carrying (Lambda) layers")
    _add_output_args(inspect)

    from edge_sdk.debug.fallback import DEFAULT_MAX_FLOAT_SHARE  # light: no runtime, a constant declared once

    debug = commands.add_parser("debug", help="rank an int8 artifact's layers by quantization error; --max-drop keeps the worst in float")
    debug.add_argument("artifact", type=Path, help="int8 .tflite or QDQ .onnx artifact with its manifest")
    debug.add_argument("--reference", required=True, help="float model: the Keras source (TFLite); the fp32 .onnx or a PyTorch package.module:factory (ONNX)")
    debug.add_argument("--data", type=Path, required=True, help="real inputs (with labels for --max-drop)")
    debug.add_argument("--samples", type=int, default=200, help="samples for the per-layer error (default 200)")
    debug.add_argument("--max-drop", type=float, help="float fallback: keep layers in float until the drop's upper bound is within this many points; "
                       "exit 0 when an artifact meets it (int8, or int16x8 once int8 is not viable), 10 when none does")
    debug.add_argument("--max-float-share", type=float, default=DEFAULT_MAX_FLOAT_SHARE,
                       help="fallback: stop (int8 is not viable here, try int16x8) before more than this share of the quantizable layers is in float (default %(default)s)")
    debug.add_argument("--eval-samples", type=int, default=1000, help="fallback: samples to measure each candidate on (default 1000)")
    debug.add_argument("--fallback-dir", type=Path, help="fallback: folder for the artifact that meets the budget; the tries are built in a staging folder there and removed (default: beside the artifact)")
    debug.add_argument("--save-fallback", type=Path, help="fallback: write the chosen settings here (read by `convert --float-nodes-from`)")
    debug.add_argument("-o", "--output", type=Path, help="write the debug report (.json or .md)")
    debug.add_argument("--overwrite", action="store_true")
    debug.add_argument("--no-verify", action="store_true", help="debug an artifact whose sha256 does not match its manifest")
    debug.add_argument("--input-shape", action="append", metavar="NAME:DIMS", help="fix the reference's dynamic input dims, e.g. x:1,3,48,192 (default: the shapes in the artifact's manifest)")
    add_preprocess_args(debug)
    _add_output_args(debug)

    check = commands.add_parser("check-calib", help="compare calibration data with evaluation data before quantizing")
    check.add_argument("calibration", type=Path)
    check.add_argument("--data", type=Path, required=True, help="evaluation data")
    check.add_argument("--samples", type=int, default=1000, help="samples of each set to look at (default 1000)")
    check.add_argument("--reference", "--model", dest="model", action=_DeprecatedAlias,
                       help="float model (a file or a PyTorch package.module:factory): also estimate sample-count sufficiency by re-calibrating on random subsets (--model: deprecated name)")
    calibrated = [name for name, spec in FORMATS.items() if spec.calibrated_modes]
    check.add_argument("--to", default="tflite", choices=calibrated, help=f"format for the sufficiency estimate ({' | '.join(calibrated)})")
    check.add_argument("--calib-samples", type=int, default=100, help="sufficiency: calibration samples per subset")
    check.add_argument("--input-shape", action="append", metavar="NAME:DIMS", help="sufficiency: fix the model's dynamic input dims, e.g. x:1,3,48,192 (converted and run at them)")
    check.add_argument("--subsets", type=int, default=3, help="sufficiency: number of subsets")
    add_preprocess_args(check)
    _add_output_args(check)

    report = commands.add_parser(
        "report", help="render results files as HTML or Markdown, or compare two of them (exit 9 on a regression)",
        description="Render results JSON files as one self-contained HTML report or a Markdown report. With --compare BASELINE NEW, "
        "print what changed per artifact and exit with code 9 when a threshold is crossed (0 otherwise).",
    )
    report.add_argument("results", type=Path, nargs="*", help="results files written by `edge-sdk bench -o`")
    report.add_argument("-o", "--output", type=Path, help="report file; the format follows its suffix (.html, .md) (default: report.html beside the first results file)")
    report.add_argument("--format", choices=["html", "md"], help="report format (default: from --output's suffix)")
    report.add_argument("--max-drop", type=float, help="accuracy drop budget in points: warn about artifacts above it")
    report.add_argument("--overwrite", action="store_true", help="replace an existing report")
    report.add_argument("--compare", type=Path, nargs=2, metavar=("BASELINE", "NEW"), help="compare two results files")
    report.add_argument("--max-latency-regression", help="compare: fail when p50 latency grows by more than this, e.g. 10%%")
    report.add_argument("--max-accuracy-drop", type=float, help="compare: fail when top-1 accuracy falls by more than this many points")
    report.add_argument("--json", action="store_true", help="print the report's content (verdict, warnings, rows) as JSON on stdout instead of writing a file")
    targets_cmd = commands.add_parser("targets", help="list target profiles (built-in and yours in YAML)",
                                      description="List target profiles. Add your own in YAML under $XDG_CONFIG_HOME/edge-sdk/targets/ (default ~/.config/edge-sdk/targets/) or $EDGE_SDK_TARGETS.")
    targets_cmd.add_argument("--json", action="store_true", help="print the profiles as JSON")

    run = commands.add_parser("run", help="the slim on-device runner: run a model on preprocessed inputs, write a results JSON",
                              description="Same as `python -m edge_sdk.runner`: imports numpy and one runtime only.")
    add_runner_args(run)

    pipeline = commands.add_parser("pipeline", help="convert every model in an edge.yaml to every format, bench, and report")
    pipeline.add_argument("config", type=Path, help="pipeline file (see README: the pipeline YAML reference)")
    _add_output_args(pipeline)
    _add_trust_arg(convert, bench, debug, check)
    for takes_reference in (bench, debug, check):
        takes_reference.add_argument("--reference-weights", type=Path, metavar="PATH",
                            help="trained weights for a PyTorch --reference package.module:factory (as convert's --weights; DeepSpeed folders need --trust-model)")

    from edge_sdk.serve.cli_args import add_serve_parsers

    add_serve_parsers(commands)  # serve, loadtest
    completion = commands.add_parser("completion", help="print a shell completion script (bash, zsh or tcsh)",
                                     description="Print a completion script; e.g. `edge-sdk completion bash > ~/.local/share/bash-completion/completions/edge-sdk`.")
    completion.add_argument("shell", choices=["bash", "zsh", "tcsh"], help="the shell to complete in")
    _fill_missing_help(parser)
    return parser


def _add_trust_arg(*parsers: argparse.ArgumentParser) -> None:
    """The one trust flag (edge_sdk.model_safety): on each parser that does not have it yet."""
    for parser in parsers:
        try:
            parser.add_argument("--trust-model", action="store_true",
                                help="load model files that carry code (Lambda layers, pickles); only for files whose origin you trust")
        except argparse.ArgumentError:
            pass  # already there (e.g. convert's PyTorch checkpoints): one flag, one meaning


def _add_output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress, no table")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    _add_verbosity_args(parser)


def _add_verbosity_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="show what the frameworks print (TensorFlow, ONNX Runtime logs), on stderr")
    parser.add_argument("--log-file", type=Path, metavar="PATH", help="append what the frameworks print to this file")


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter drowns the table; real errors still surface as exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    args.parser = parser  # `completion` prints a script for this parser
    from edge_sdk import quiet

    quiet.configure(verbose=getattr(args, "verbose", False), log_file=getattr(args, "log_file", None))
    # `kill PID` (SIGTERM) stops a run like Ctrl-C: finished results are kept and what did not finish is named.
    in_main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt) if in_main_thread else None
    try:
        _check_path_lengths(args)
        from edge_sdk.model_safety import trusting_model_code

        with quiet.stdout_only_ours(), trusting_model_code(getattr(args, "trust_model", False)):
            return COMMANDS[args.command](args)
    except EdgeSdkError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader closed the pipe (`edge-sdk targets --json | head -1`): nothing more to say, and no traceback.
        return BROKEN_PIPE_EXIT_CODE
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_sigterm)


BROKEN_PIPE_EXIT_CODE = 141  # 128 + SIGPIPE, what a shell reports for a command stopped by a closed pipe


def _check_path_lengths(args: argparse.Namespace) -> None:
    """Every path argument, before any work: a name over the file-system limit fails every call (ENAMETOOLONG)."""
    from edge_sdk.fileio import check_path_length

    for name, value in vars(args).items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, Path) or (name in ("model", "reference") and isinstance(item, str)):
                check_path_length(item, f"--{name.replace('_', '-')}" if name not in ("model", "artifact", "artifacts", "results", "config", "calibration") else name)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
