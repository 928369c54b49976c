"""The `serve` and `loadtest` sub-commands' arguments, and the options they become. Standard library only."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edge_sdk.errors import UsageError


def add_serve_parsers(commands: Any) -> None:
    """Add `serve` and `loadtest` to the `edge-sdk` sub-parsers."""
    serve = commands.add_parser("serve", help="serve artifacts over the Open Inference Protocol (KServe v2), with batching and /metrics",
                                description="Serve .tflite / .onnx artifacts over HTTP with the Open Inference Protocol (KServe v2; "
                                "Triton's and KServe's clients work). Needs `pip install 'edge-sdk[serve]'` plus one runtime.")
    serve.add_argument("artifacts", type=Path, nargs="+", help=".tflite or .onnx artifacts (with their manifests)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    serve.add_argument("--name", action="append", help="model name for the artifacts in order (default: the file name without its suffix)")
    serve.add_argument("--raw-io", action="store_true", help="expose the model's own integer tensors instead of FP32")
    serve.add_argument("--preprocess", action="store_true", help="apply the manifest's preprocessing to every request (else when parameters.preprocess is true)")
    batching = serve.add_argument_group("batching and limits")
    batching.add_argument("--max-batch", type=int, default=1, help="dynamic batching: up to this many samples per runtime call (models with a batch axis)")
    batching.add_argument("--batch-timeout-ms", type=float, default=2.0, help="wait at most this long to fill a batch (default 2)")
    batching.add_argument("--workers", type=int, default=1, help="runners per model, each with its own interpreter (default 1)")
    batching.add_argument("--threads", type=int, help="runtime threads per runner")
    batching.add_argument("--queue-size", type=int, default=64, help="requests waiting per model before answering 503 (default 64)")
    batching.add_argument("--request-timeout", type=float, default=30.0, help="seconds before an unanswered request gets 504 (default 30)")
    batching.add_argument("--max-body-mb", type=float, default=16.0, help="largest request body in MiB (default 16); larger gets 413")
    streaming = serve.add_argument_group("stateful models")
    streaming.add_argument("--state", action="append", metavar="IN:OUT", help="state pair when the manifest has none: feed output OUT back as input IN per sequence_id")
    streaming.add_argument("--sequence-idle-s", type=float, default=60.0, help="forget a sequence idle this long (default 60)")
    operations = serve.add_argument_group("operations")
    operations.add_argument("--token-file", type=Path, help="require 'Authorization: Bearer TOKEN' (the file's first line) on every endpoint")
    operations.add_argument("--reload-interval", type=float, default=2.0, help="seconds between checks for replaced artifacts (0: never; default 2)")
    operations.add_argument("--runtime", choices=["litert", "onnxruntime"], help="runtime (default: from the model file)")
    operations.add_argument("--no-xnnpack", action="store_true", help="TFLite: disable the XNNPACK delegate")
    operations.add_argument("--access-log", action="store_true", help="log every request (uvicorn's access log)")

    load = commands.add_parser("loadtest", help="closed-loop load on a served model: throughput and p50/p99",
                               description="N clients each send a request and wait for its answer, for T seconds. Standard library only.")
    load.add_argument("url", help="server URL, e.g. http://127.0.0.1:8080")
    load.add_argument("--model", help="model name (default: the first the server lists)")
    load.add_argument("-c", "--concurrency", type=int, default=1)
    load.add_argument("-t", "--duration", type=float, default=10.0, help="seconds measured (default 10)")
    load.add_argument("--warmup", type=float, default=1.0, help="seconds run first and not counted (default 1)")
    load.add_argument("--inputs", type=Path, help="model-ready samples (.npz, one array per input; default zeros)")
    load.add_argument("--json-tensors", action="store_true", help="send JSON tensors instead of the binary extension")
    load.add_argument("--token-file", type=Path, help="bearer token file")
    load.add_argument("--json", action="store_true", help="print the result as JSON")


def _state_pairs(values: list[str] | None) -> list[tuple[str, str]]:
    pairs = []
    for value in values or []:
        state_in, sep, state_out = value.partition(":")
        if not sep or not state_in or not state_out:
            raise UsageError(f"--state {value!r} must be INPUT:OUTPUT", fix="e.g. --state h_in:h_out")
        pairs.append((state_in, state_out))
    return pairs


def serve_options_from_args(args: argparse.Namespace) -> tuple[Any, Any]:
    """(ServeOptions, ListenOptions) from parsed `serve` arguments."""
    from edge_sdk.serve.model import ServeOptions
    from edge_sdk.serve.server import ListenOptions
    from targets.runners.base import RunnerOptions

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port number")
    if args.max_body_mb <= 0:
        raise UsageError("--max-body-mb must be positive")
    options = ServeOptions(
        raw_io=args.raw_io, preprocess=args.preprocess, max_batch=args.max_batch, batch_timeout_ms=args.batch_timeout_ms,
        workers=args.workers, queue_size=args.queue_size, request_timeout_s=args.request_timeout, max_body_bytes=int(args.max_body_mb * 2**20),
        sequence_idle_s=args.sequence_idle_s, state_pairs=_state_pairs(args.state), runtime=args.runtime,
        runner=RunnerOptions(threads=args.threads, xnnpack=not args.no_xnnpack),
    )
    listen = ListenOptions(host=args.host, port=args.port, token_file=args.token_file, reload_interval_s=args.reload_interval, access_log=args.access_log)
    return options, listen
