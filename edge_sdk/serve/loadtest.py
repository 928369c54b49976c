"""`edge-sdk loadtest URL`: a closed-loop load generator for an Open Inference Protocol server.

N clients, each on its own keep-alive connection, send one request, wait for its answer and send the next, for T
seconds; the result is throughput, latency percentiles and the errors by status. Raise N until throughput stops
growing while p99 climbs: that is the knee. Standard library + numpy only, so it runs anywhere the runner does.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import DataError, UsageError
from edge_sdk.serve.protocol import V2_TO_NUMPY, encode_infer_request


@dataclass
class LoadResult:
    url: str
    model: str
    concurrency: int
    duration_s: float
    requests: int
    errors: int
    errors_by_status: dict[str, int]
    throughput_rps: float
    latency_ms: dict[str, float]  # p50, p90, p99, mean, max
    binary: bool
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def to_dict(self, *, with_latencies: bool = False) -> dict[str, Any]:
        payload = asdict(self)
        if not with_latencies:
            payload.pop("latencies_ms")
        return payload

    def summary(self) -> str:
        lat = self.latency_ms
        return (f"{self.model} at {self.url}: concurrency {self.concurrency}, {self.duration_s:.1f} s, {self.requests} requests, "
                f"{self.errors} errors, {self.throughput_rps:.0f} req/s, p50 {lat.get('p50', float('nan')):.3f} ms, "
                f"p99 {lat.get('p99', float('nan')):.3f} ms")


class _Connection:
    def __init__(self, url: urllib.parse.SplitResult, headers: dict[str, str], timeout_s: float) -> None:
        self.url = url
        self.headers = headers
        self.timeout_s = timeout_s
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes, http.client.HTTPResponse]:
        for attempt in range(2):  # a keep-alive connection the server closed: reconnect once
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.url.hostname or "127.0.0.1", self.url.port or 80, timeout=self.timeout_s)
                self.conn.connect()
                # http.client sends headers and body in two writes: without TCP_NODELAY, Nagle's algorithm and the
                # server's delayed ACK add ~40 ms to every request.
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
                response = self.conn.getresponse()
                return response.status, response.read(), response
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _request_inputs(metadata: dict[str, Any], samples: Path | None, index: int) -> dict[str, np.ndarray]:
    inputs = {}
    for entry in metadata["inputs"]:
        shape = [1 if d < 0 else d for d in entry["shape"]]
        dtype = V2_TO_NUMPY[entry["datatype"]]
        if samples is None:
            inputs[entry["name"]] = np.zeros(shape, dtype)
            continue
        with np.load(samples, allow_pickle=False) as data:
            if entry["name"] not in data.files and len(metadata["inputs"]) > 1:
                raise DataError(f"{samples} has no array {entry['name']!r} for input {entry['name']!r}")
            array = data[entry["name"]] if entry["name"] in data.files else data[data.files[0]]
        sample = array[index % len(array)][None].astype(dtype)
        if list(sample.shape) != shape:
            raise DataError(f"{samples}: a sample of shape {list(sample.shape)} does not fit input {entry['name']!r} {entry['shape']}", fix="save model-ready samples, one per row")
        inputs[entry["name"]] = sample
    return inputs


def run_loadtest(url: str, *, model: str | None = None, concurrency: int = 1, duration_s: float = 10.0, warmup_s: float = 1.0,
                 samples: Path | None = None, binary: bool = True, token: str | None = None, timeout_s: float = 30.0) -> LoadResult:
    """Closed loop: `concurrency` clients for `duration_s` seconds (after `warmup_s` not counted)."""
    if concurrency < 1 or duration_s <= 0:
        raise UsageError("--concurrency must be at least 1 and --duration positive")
    parsed = urllib.parse.urlsplit(url.rstrip("/"))
    if parsed.scheme != "http" or not parsed.hostname:
        raise UsageError(f"{url!r} is not an http://HOST:PORT URL")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    probe = _Connection(parsed, headers, timeout_s)
    try:
        if model is None:
            status, body, _ = probe.request("POST", "/v2/repository/index", b"{}", {"content-type": "application/json"})
            index = json.loads(body) if status == 200 else []
            if not index:
                raise UsageError(f"{url} lists no models (HTTP {status})", fix="give --model NAME")
            model = index[0]["name"]
        status, body, _ = probe.request("GET", f"/v2/models/{model}")
        if status != 200:
            raise UsageError(f"{url} has no model {model!r}: HTTP {status} {body[:200]!r}")
        metadata = json.loads(body)
    except OSError as error:
        raise UsageError(f"cannot reach {url}: {error}", fix="start `edge-sdk serve` first, or check the port") from error
    finally:
        probe.close()
    bodies = [encode_infer_request(_request_inputs(metadata, samples, i), binary=binary) for i in range(max(1, concurrency))]
    path = f"/v2/models/{model}/infer"
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    statuses: list[dict[str, int]] = [{} for _ in range(concurrency)]
    start_at = time.perf_counter() + warmup_s
    stop_at = start_at + duration_s

    def client(index: int) -> None:
        connection = _Connection(parsed, headers, timeout_s)
        body, body_headers = bodies[index]
        try:
            while True:
                sent = time.perf_counter()
                if sent >= stop_at:
                    return
                try:
                    status, _, _ = connection.request("POST", path, body, body_headers)
                    key = str(status)
                except OSError as error:
                    key = type(error).__name__
                done = time.perf_counter()
                if sent >= start_at:
                    statuses[index][key] = statuses[index].get(key, 0) + 1
                    if key == "200":
                        latencies[index].append((done - sent) * 1000.0)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = np.array([value for values in latencies for value in values])
    by_status: dict[str, int] = {}
    for counts in statuses:
        for key, count in counts.items():
            by_status[key] = by_status.get(key, 0) + count
    total = sum(by_status.values())
    errors = total - by_status.get("200", 0)
    stats = {} if merged.size == 0 else {
        "p50": float(np.percentile(merged, 50)), "p90": float(np.percentile(merged, 90)), "p99": float(np.percentile(merged, 99)),
        "mean": float(merged.mean()), "max": float(merged.max()),
    }
    return LoadResult(url, model, concurrency, duration_s, total, errors, {k: v for k, v in by_status.items() if k != "200"},
                      by_status.get("200", 0) / duration_s, stats, binary, [round(v, 4) for v in merged.tolist()])
