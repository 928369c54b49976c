"""The `edge-sdk` command line: parse, call the Python API, print. No logic of its own."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from edge_sdk import __version__
from edge_sdk.commands import COMMANDS
from edge_sdk.errors import EdgeSdkError
from edge_sdk.io_args import add_io_args


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
    convert.add_argument("--allow-degenerate-calibration", action="store_true", help="go on with all-zero or constant calibration / validation data (with a warning)")
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
    bench.add_argument("--no-verify", action="store_true", help="bench artifacts whose sha256 does not match their manifest (marked unverified)")
    _add_preprocess_args(bench)
    add_io_args(bench)
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
    debug.add_argument("--no-verify", action="store_true", help="debug an artifact whose sha256 does not match its manifest")
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
    run.add_argument("--outputs", type=Path, help="also save every output of every sample here (.npz: one array per output name, and `outputs`, the primary one)")
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
    # `kill PID` (SIGTERM) stops a run like Ctrl-C: finished results are kept and what did not finish is named.
    in_main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt) if in_main_thread else None
    try:
        return COMMANDS[args.command](args)
    except EdgeSdkError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_sigterm)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
