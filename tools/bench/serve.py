"""Served throughput and latency against the bare runner loop, side by side in one run (these machines are noisy).

For one model (default: the digits int8 CNN, trained and converted here in a few seconds):
1. the bare runner loop: `runner.infer()` on one sample (quantize, invoke, dequantize), the work a request needs;
2. `edge-sdk serve` (starlette + uvicorn) without batching, with dynamic batching (--max-batch 8), and with two
   workers, each under closed-loop load (edge_sdk.serve.loadtest) at concurrency 1 and 8;
3. the same model, queue and codec behind the standard library's ThreadingHTTPServer, the alternative we measured;
4. all of them again at concurrency 1, interleaved request by request, so that the machine's load falls alike.

Goal, stated beside the figure: per-request overhead at concurrency 1 (served p50 - bare runner p50) under 1 ms.
Run: `python tools/bench/serve.py [--model M.tflite] [--duration 5] [--json out.json]`.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

GOAL_OVERHEAD_MS = 1.0


def build_digits_int8(folder: Path) -> Path:
    """The tests' digits CNN (tests/conftest.py), trained 15 epochs and converted to int8 through edge_sdk.convert."""
    import keras

    import edge_sdk
    from examples.compression.common import PREPROCESS, write_digits_data

    train, test = write_digits_data(folder)
    keras.utils.set_random_seed(0)
    with np.load(train) as data:
        x, y = data["x"][..., None] / 16.0, data["y"]
    model = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(16, 3, padding="same", activation="relu"), keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(), keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10),
    ])
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    model.save(folder / "digits.keras")
    return edge_sdk.convert(folder / "digits.keras", folder / "digits_int8.tflite", mode="int8", calibration=train, validation_data=test, preprocess=PREPROCESS).path


def bare_runner_ms(model: Path, rounds: int) -> dict[str, float]:
    from targets.runners.base import RunnerOptions
    from targets.runners.litert import LiteRTRunner

    with LiteRTRunner(model, RunnerOptions()) as runner:
        spec = runner.inputs[0]
        inputs = {spec.name: np.zeros([1, *spec.shape[1:]], np.float32)}
        for _ in range(100):
            runner.infer(inputs)
        wall = []
        for _ in range(rounds):
            start = time.perf_counter()
            runner.infer(inputs)
            wall.append((time.perf_counter() - start) * 1e3)
    return {"p50": statistics.median(wall), "p99": float(np.percentile(wall, 99)), "throughput_rps": 1000.0 / statistics.mean(wall)}


def start(command: list[str]) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 120
    for line in iter(process.stderr.readline, ""):
        match = re.search(r"listening on (http://[\d.]+:\d+)", line)
        if match:
            return process, match.group(1)
        if time.monotonic() > deadline:
            break
    process.kill()
    raise RuntimeError(f"{command} did not start")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(60)


def served_figures(url: str, duration_s: float, concurrencies: list[int]) -> list[dict[str, Any]]:
    from edge_sdk.serve.loadtest import run_loadtest

    rows = []
    for concurrency in concurrencies:
        result = run_loadtest(url, concurrency=concurrency, duration_s=duration_s, warmup_s=1.0)
        rows.append({"concurrency": concurrency, "throughput_rps": result.throughput_rps, "p50": result.latency_ms["p50"], "p99": result.latency_ms["p99"],
                     "errors": result.errors})
    return rows


def interleaved_c1_ms(model: Path, urls: dict[str, str], rounds: int) -> dict[str, dict[str, float]]:
    """Concurrency 1, interleaved: each round sends one request to every server and makes one bare runner call, so
    the machine's changing load falls on all of them alike. Per setup: p50 and p99 of the round trips, in ms."""
    import http.client
    import urllib.parse

    from edge_sdk.serve.protocol import encode_infer_request
    from targets.runners.base import RunnerOptions
    from targets.runners.litert import LiteRTRunner

    connections, requests = {}, {}
    for label, url in urls.items():
        parsed = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port or 80, timeout=30)
        connection.connect()
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.request("GET", f"/v2/models/{model.stem}")
        metadata = json.loads(connection.getresponse().read())
        shape = [1 if d < 0 else d for d in metadata["inputs"][0]["shape"]]
        connections[label], requests[label] = connection, encode_infer_request({metadata["inputs"][0]["name"]: np.zeros(shape, np.float32)})
    times: dict[str, list[float]] = {label: [] for label in ["bare runner.infer()", *urls]}
    with LiteRTRunner(model, RunnerOptions()) as runner:
        spec = runner.inputs[0]
        bare_inputs = {spec.name: np.zeros([1, *spec.shape[1:]], np.float32)}
        for round_index in range(rounds + 100):  # the first 100 rounds warm everything up
            start = time.perf_counter()
            runner.infer(bare_inputs)
            if round_index >= 100:
                times["bare runner.infer()"].append((time.perf_counter() - start) * 1e3)
            for label, connection in connections.items():
                body, headers = requests[label]
                start = time.perf_counter()
                connection.request("POST", f"/v2/models/{model.stem}/infer", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"{label}: HTTP {response.status}")
                if round_index >= 100:
                    times[label].append((time.perf_counter() - start) * 1e3)
    for connection in connections.values():
        connection.close()
    return {label: {"p50": statistics.median(values), "p99": float(np.percentile(values, 99))} for label, values in times.items()}


def stdlib_server(model: Path) -> None:
    """The comparison: the same registry, queue and codec behind http.server.ThreadingHTTPServer (a thread per connection)."""
    from edge_sdk.serve.batching import Job
    from edge_sdk.serve.metrics import ServerMetrics
    from edge_sdk.serve.model import ServeOptions
    from edge_sdk.serve.protocol import HEADER_LENGTH, RequestError, encode_infer_response, error_body, json_body, parse_infer_request
    from edge_sdk.serve.registry import ModelRegistry
    from edge_sdk.serve.state import SequenceStore

    registry = ModelRegistry([(model, model.stem)], ServeOptions(), ServerMetrics(), SequenceStore(60))

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in {"content-type": "application/json", **headers, "content-length": str(len(body))}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            executor = registry.get(self.path.rsplit("/", 1)[-1])
            self._answer(200, json_body(executor.model.metadata()), {}) if executor else self._answer(404, error_body("no model"), {})

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path == "/v2/repository/index":
                return self._answer(200, json_body(registry.index()), {})
            executor = registry.get(self.path.split("/")[3])
            try:
                request = parse_infer_request(body, self.headers.get(HEADER_LENGTH))
                inputs, batch = executor.model.prepare(request)
                outputs = executor.submit(Job(inputs, batch)).result(30)
                content, headers = encode_infer_response(executor.model.name, "1", request, executor.model.finish(outputs, request))
                self._answer(200, content, headers)
            except RequestError as error:
                self._answer(error.status, error_body(error.message), {})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    registry.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a .tflite artifact (default: build the digits int8 CNN)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load level (default 5)")
    parser.add_argument("--rounds", type=int, default=5000, help="bare runner calls (default 5000)")
    parser.add_argument("--interleaved-rounds", type=int, default=2000, help="rounds of the interleaved concurrency-1 comparison (default 2000)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--smoke", action="store_true", help="the same code with tiny sizes (make test runs it; its figures are not results)")
    parser.add_argument("--stdlib-server", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.duration, args.rounds, args.interleaved_rounds = 0.5, 300, 150
    if args.stdlib_server:
        stdlib_server(args.stdlib_server)
        return 0
    with tempfile.TemporaryDirectory(prefix="edge-sdk-bench-serve-") as folder:
        model = args.model or build_digits_int8(Path(folder))
        bare = bare_runner_ms(model, args.rounds)
        serve = [sys.executable, "-m", "edge_sdk.cli", "serve", str(model), "--port", "0", "--reload-interval", "0"]
        setups = {
            "serve (starlette+uvicorn), no batching": serve,
            "serve, --max-batch 8 --batch-timeout-ms 2": [*serve, "--max-batch", "8", "--batch-timeout-ms", "2"],
            "serve, --workers 2": [*serve, "--workers", "2"],
            "standard library ThreadingHTTPServer, no batching": [sys.executable, str(Path(__file__).resolve()), "--stdlib-server", str(model)],
        }
        figures: dict[str, Any] = {"model": model.name, "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "bare_runner_ms": bare, "served": {}}
        for label, command in setups.items():
            process, url = start(command)
            try:
                figures["served"][label] = served_figures(url, args.duration, [1, 8])
            finally:
                stop(process)
        started = {label: start(command) for label, command in setups.items()}
        try:
            figures["interleaved_c1_ms"] = interleaved_c1_ms(model, {label: url for label, (_, url) in started.items()}, args.interleaved_rounds)
        finally:
            for process, _ in started.values():
                stop(process)
    print(f"model {figures['model']}, {figures['cpu_count']} CPUs, load average {figures['load_average'][0]:.1f} at the start")
    print(f"bare runner.infer() loop: p50 {bare['p50']:.3f} ms, p99 {bare['p99']:.3f} ms, {bare['throughput_rps']:.0f} calls/s (one thread, no HTTP)")
    print("| setup | concurrency | throughput (req/s) | p50 (ms) | p99 (ms) | overhead at p50 vs the bare loop (goal < 1 ms at concurrency 1) | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, rows in figures["served"].items():
        for row in rows:
            overhead = row["p50"] - bare["p50"]
            verdict = ("meets" if overhead < GOAL_OVERHEAD_MS else "misses") + " the goal" if row["concurrency"] == 1 else "(queueing included)"
            print(f"| {label} | {row['concurrency']} | {row['throughput_rps']:.0f} | {row['p50']:.3f} | {row['p99']:.3f} | {overhead:+.3f} ms {verdict} | {row['errors']} |")
    interleaved = figures["interleaved_c1_ms"]
    bare_p50 = interleaved["bare runner.infer()"]["p50"]
    print(f"\nconcurrency 1, interleaved ({args.interleaved_rounds} rounds, one request to each server per round, load shared alike):")
    print("| setup | p50 (ms) | p99 (ms) | overhead at p50 vs the bare call (goal < 1 ms) |")
    print("| --- | --- | --- | --- |")
    for label, row in interleaved.items():
        overhead = row["p50"] - bare_p50
        verdict = "" if label.startswith("bare") else f"{overhead:+.3f} ms: {'meets' if overhead < GOAL_OVERHEAD_MS else 'misses'} the goal"
        print(f"| {label} | {row['p50']:.3f} | {row['p99']:.3f} | {verdict} |")
    # The figures as `name: value` lines (what tests/tools/test_bench_scripts.py reads), the goal beside the ratio.
    unbatched, batched = (figures["served"][label] for label in list(setups)[:2])
    overhead = interleaved["serve (starlette+uvicorn), no batching"]["p50"] - bare_p50
    print(f"\nbare_runner_p50_ms: {bare_p50:.4f}")
    print(f"served_c1_p50_ms: {interleaved['serve (starlette+uvicorn), no batching']['p50']:.4f}")
    print(f"served_c8_throughput_rps: {unbatched[-1]['throughput_rps']:.1f}")
    print(f"served_batched_c8_throughput_rps: {batched[-1]['throughput_rps']:.1f}")
    print(f"served_overhead_c1_ms: {overhead:.4f}  goal <= {GOAL_OVERHEAD_MS:g}: {'met' if overhead <= GOAL_OVERHEAD_MS else 'not met'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
