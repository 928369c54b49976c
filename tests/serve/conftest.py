"""Helpers for the serving tests: a real `edge-sdk serve` process on a free port, small real ONNX models, a client."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_sdk.serve.protocol import decode_infer_response, encode_infer_request
from tests.conftest import DIGITS_PREPROCESS, REPO

START_TIMEOUT_S = 90


@dataclass
class Served:
    process: subprocess.Popen
    url: str
    port: int
    log: list[str] = field(default_factory=list)

    def log_text(self) -> str:
        return "".join(self.log)

    def wait_for_log(self, pattern: str, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log_text())
            if match:
                return match.group(0)
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} not in the server log:\n{self.log_text()}")


@contextmanager
def served(*args: Any, cwd: Path | None = None) -> Iterator[Served]:
    """`edge-sdk serve ARGS --port 0` in a child process, until the block ends (then SIGTERM, exit 0 expected)."""
    command = [sys.executable, "-m", "edge_sdk.cli", "serve", *map(str, args), "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd or REPO)
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    url = None
    while time.monotonic() < deadline and url is None:
        match = re.search(r"listening on (http://[\d.]+:(\d+))", "".join(log))
        if match:
            url = match.group(1)
        elif process.poll() is not None:
            reader.join(5)
            raise AssertionError(f"serve exited with {process.returncode}:\n{''.join(log)}")
        time.sleep(0.05)
    if url is None:
        process.kill()
        raise AssertionError(f"serve did not start in {START_TIMEOUT_S} s:\n{''.join(log)}")
    server = Served(process, url, int(url.rsplit(":", 1)[1]), log)
    try:
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(5)


class Client:
    """A keep-alive HTTP client of the protocol (standard library), with TCP_NODELAY as real clients set it."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
        response = self.conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()

    def get_json(self, path: str) -> tuple[int, Any]:
        status, _, body = self.request("GET", path)
        return status, json.loads(body)

    def infer(self, model: str, inputs: dict[str, np.ndarray], *, binary: bool = True, parameters: dict[str, Any] | None = None) -> tuple[int, Any]:
        """(200, outputs) or (status, error JSON)."""
        body, headers = encode_infer_request(inputs, binary=binary, parameters=parameters)
        status, response_headers, content = self.request("POST", f"/v2/models/{model}/infer", body, headers)
        if status != 200:
            return status, json.loads(content)
        return status, decode_infer_response(content, response_headers.get("inference-header-content-length"))

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="session")
def digits_inputs(digits_npz: tuple[Path, Path]) -> tuple[np.ndarray, np.ndarray]:
    """(raw uint8 test images (N, 8, 8), model-ready float32 (N, 8, 8, 1)) for the first 24 test samples."""
    with np.load(digits_npz[1]) as data:
        raw = data["x"][:24].astype(np.uint8)
    return raw, (raw[..., None] * np.float32(DIGITS_PREPROCESS["scale"])).astype(np.float32)


@pytest.fixture(scope="session")
def run_outputs(tmp_path_factory: pytest.TempPathFactory, digits_artifacts: dict[str, Path], digits_inputs: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """`edge-sdk run --outputs` on the same inputs, per artifact mode: what the server must answer."""
    folder = tmp_path_factory.mktemp("run")
    np.savez(folder / "inputs.npz", x=digits_inputs[1])
    outputs = {}
    for mode, artifact in digits_artifacts.items():
        subprocess.run([sys.executable, "-m", "edge_sdk.cli", "run", str(artifact), "--inputs", str(folder / "inputs.npz"), "-o", str(folder / f"{mode}.json"),
                        "--outputs", str(folder / f"{mode}.npz"), "--runs", "1", "--warmup", "0"], check=True, capture_output=True, cwd=REPO)
        outputs[mode] = np.load(folder / f"{mode}.npz")["outputs"]
    return outputs


def _save_onnx(graph: Any, path: Path) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture(scope="session")
def accumulator_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stateful model: total = x + total_in; outputs y = total and total_out = total (the state pair total_in:total_out)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "total_in"], ["y"]), helper.make_node("Identity", ["y"], ["total_out"])], "accumulator",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]), helper.make_tensor_value_info("total_in", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4]), helper.make_tensor_value_info("total_out", TensorProto.FLOAT, [1, 4])],
    )
    return _save_onnx(graph, tmp_path_factory.mktemp("accumulator") / "accumulator.onnx")


@pytest.fixture(scope="session")
def lookup_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Gather from a 5-entry table: an index outside 0..4 is a real runtime fault inside ONNX Runtime."""
    from onnx import TensorProto, helper

    table = helper.make_tensor("table", TensorProto.FLOAT, [5], [10.0, 11.0, 12.0, 13.0, 14.0])
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "index"], ["value"], axis=0)], "lookup",
        [helper.make_tensor_value_info("index", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, [1])], initializer=[table],
    )
    return _save_onnx(graph, tmp_path_factory.mktemp("lookup") / "lookup.onnx")


@pytest.fixture(scope="session")
def slow_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 chained 500x500 MatMuls on a fixed batch of 64 (~1.3 GMAC): tens of milliseconds per call, to fill a queue."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array((np.eye(500, dtype=np.float32) * 0.999), "w")
    nodes = [helper.make_node("MatMul", ["x" if i == 0 else f"h{i}", "w"], [f"h{i + 1}" if i < 39 else "y"]) for i in range(40)]
    graph = helper.make_graph(nodes, "slow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 500])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 500])], initializer=[weight])
    return _save_onnx(graph, tmp_path_factory.mktemp("slow") / "slow.onnx")
