"""`edge-sdk serve` as a real process on real artifacts: answers equal `edge-sdk run`, with batching on and off; bad
requests get 4xx with a message; a runtime fault is a 500 and serving goes on; load, metrics, SIGTERM, state, reload."""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edge_sdk.serve.protocol import encode_infer_request
from tests.serve.conftest import Client, served

pytestmark = pytest.mark.slow
MODEL = "digits_int8"


def _metadata(client: Client, model: str) -> dict:
    status, metadata = client.get_json(f"/v2/models/{model}")
    assert status == 200, metadata
    return metadata


@pytest.mark.parametrize("batching", [[], ["--max-batch", "8", "--batch-timeout-ms", "5", "--workers", "2"]], ids=["unbatched", "batched"])
def test_outputs_equal_edge_sdk_run(batching, digits_artifacts, digits_inputs, run_outputs):
    raw, ready = digits_inputs
    with served(digits_artifacts["int8"], *batching) as server:
        assert server.url.startswith("http://127.0.0.1:")  # this machine only, unless --host says otherwise
        assert "reachable from the network" not in server.log_text()
        client = Client(server.port)
        metadata = _metadata(client, MODEL)
        (input_name,), (output_name,) = [t["name"] for t in metadata["inputs"]], [t["name"] for t in metadata["outputs"]]
        assert metadata["inputs"][0] == {"name": input_name, "datatype": "FP32", "shape": [-1, 8, 8, 1]}
        assert metadata["outputs"][0]["datatype"] == "FP32" and metadata["outputs"][0]["shape"] == [-1, 10]

        def one(index: int) -> np.ndarray:
            own = Client(server.port)
            status, outputs = own.infer(MODEL, {input_name: ready[index : index + 1]}, binary=index % 2 == 0)
            own.close()
            assert status == 200, outputs
            return outputs[output_name][0]

        with ThreadPoolExecutor(8) as pool:  # concurrent single-sample requests: batched together when batching is on
            served_outputs = np.stack(list(pool.map(one, range(len(ready)))))
        np.testing.assert_array_equal(served_outputs, run_outputs["int8"])
        status, whole = client.infer(MODEL, {input_name: ready})  # one request with a batch of 24
        assert status == 200 and np.array_equal(whole[output_name], run_outputs["int8"])
        # Raw uint8 images with the manifest's preprocessing, asked for per request.
        status, outputs = client.infer(MODEL, {input_name: raw}, parameters={"preprocess": True})
        assert status == 200, outputs
        np.testing.assert_array_equal(outputs[output_name], run_outputs["int8"])
        status, refused = client.infer(MODEL, {input_name: raw})
        assert status == 400 and "FP32" in refused["error"]
        if batching:
            _, _, text = client.request("GET", "/metrics")
            sizes = [line for line in text.decode().splitlines() if line.startswith("edge_sdk_batch_size_bucket") and 'le="1.0"' in line]
            count = [line for line in text.decode().splitlines() if line.startswith("edge_sdk_batch_size_count")]
            assert sizes and count and float(sizes[0].split()[-1]) < float(count[0].split()[-1]), "no runtime call took more than one sample"


def test_preprocess_flag_and_raw_io(digits_artifacts, digits_inputs, run_outputs):
    raw, ready = digits_inputs
    with served(digits_artifacts["int8"], "--preprocess", "--name", "pre") as server:
        client = Client(server.port)
        name = _metadata(client, "pre")["inputs"][0]["name"]
        status, outputs = client.infer("pre", {name: raw})
        assert status == 200 and np.array_equal(next(iter(outputs.values())), run_outputs["int8"])
    with served(digits_artifacts["int8"], "--raw-io") as server:
        client = Client(server.port)
        metadata = _metadata(client, MODEL)
        assert metadata["inputs"][0]["datatype"] == "INT8" and metadata["outputs"][0]["datatype"] == "INT8"
        from targets.runners.litert import LiteRTRunner

        with LiteRTRunner(digits_artifacts["int8"]) as runner:
            in_spec, out_spec = runner.inputs[0], runner.outputs[0]
        from targets.runners.base import quantize

        status, outputs = client.infer(MODEL, {metadata["inputs"][0]["name"]: quantize(ready, in_spec)})
        assert status == 200, outputs
        np.testing.assert_array_equal(next(iter(outputs.values())), quantize(run_outputs["int8"], out_spec))


def test_bad_requests_get_4xx_with_a_message_and_faults_a_500(digits_artifacts, digits_inputs, lookup_onnx, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    big = 0.01  # MiB
    with served(digits_artifacts["int8"], lookup_onnx, "--token-file", token_file, "--max-body-mb", big) as server:
        anonymous = Client(server.port)
        status, _, body = anonymous.request("GET", f"/v2/models/{MODEL}")
        assert status == 401 and "bearer token" in json.loads(body)["error"]
        client = Client(server.port, token="s3cret")
        name = _metadata(client, MODEL)["inputs"][0]["name"]
        sample = digits_inputs[1][:1]
        cases = {
            "wrong model": (client.infer("nope", {name: sample}), 404, "no model named 'nope'"),
            "wrong input name": (client.infer(MODEL, {"x": sample}), 400, "takes inputs"),
            "wrong shape": (client.infer(MODEL, {name: sample.reshape(1, 64)}), 400, "has shape [-1, 8, 8, 1]"),
            "wrong datatype": (client.infer(MODEL, {name: sample.astype(np.float64)}), 400, "is FP32, got FP64"),
            "oversized body": (client.infer(MODEL, {name: np.zeros((100, 8, 8, 1), np.float32)}), 413, "over the limit"),
        }
        for what, ((status, payload), want_status, want_text) in cases.items():
            assert status == want_status and want_text in payload["error"], (what, status, payload)
        for body in (b"{not json", b'{"inputs": 3}', b'{"inputs": [{"name": "%s", "datatype": "FP32", "shape": [1, 8, 8, 1], "data": [1, 2]}]}' % name.encode()):
            status, _, content = client.request("POST", f"/v2/models/{MODEL}/infer", body, {"content-type": "application/json"})
            assert status == 400 and json.loads(content)["error"], body
        status, payload = client.infer("lookup", {"index": np.array([7], np.int64)})
        assert status == 500 and "runtime failed" in payload["error"], payload
        status, outputs = client.infer("lookup", {"index": np.array([3], np.int64)})
        assert status == 200 and outputs["value"].tolist() == [13.0]
        status, outputs = client.infer(MODEL, {name: sample})
        assert status == 200
    assert server.process.returncode == 0, server.log_text()
    assert "Traceback" not in server.log_text()


def test_2000_requests_at_concurrency_8_and_metrics(digits_artifacts, digits_inputs):
    with served(digits_artifacts["int8"], "--workers", "2") as server:
        name = _metadata(Client(server.port), MODEL)["inputs"][0]["name"]
        body, headers = encode_infer_request({name: digits_inputs[1][:1]})

        def client_loop(_: int) -> list[int]:
            client = Client(server.port)
            statuses = [client.request("POST", f"/v2/models/{MODEL}/infer", body, headers)[0] for _ in range(250)]
            client.close()
            return statuses

        with ThreadPoolExecutor(8) as pool:
            statuses = [status for chunk in pool.map(client_loop, range(8)) for status in chunk]
        assert len(statuses) == 2000 and set(statuses) == {200}
        _, _, text = Client(server.port).request("GET", "/metrics")
        metrics = text.decode()
        assert f'edge_sdk_requests_total{{model="{MODEL}",status="200"}} 2000.0' in metrics
        for histogram in ("edge_sdk_request_seconds", "edge_sdk_queue_seconds", "edge_sdk_inference_seconds", "edge_sdk_batch_size"):
            assert f'{histogram}_bucket{{le="+Inf",model="{MODEL}"}}' in metrics, histogram
        assert f'edge_sdk_model_load_seconds{{model="{MODEL}"}}' in metrics and "edge_sdk_requests_in_flight" in metrics


def test_sigterm_during_load_answers_every_accepted_request(digits_artifacts, digits_inputs):
    with served(digits_artifacts["int8"], "--max-batch", "4") as server:
        name = _metadata(Client(server.port), MODEL)["inputs"][0]["name"]
        body, headers = encode_infer_request({name: digits_inputs[1][:1]})
        answered = [0] * 8
        refused: list[str] = []
        bad: list[str] = []

        def client_loop(index: int) -> None:
            while True:
                try:
                    client = Client(server.port)
                except OSError:
                    return  # the listener is closed: nothing more is accepted
                try:
                    while True:
                        status, _, _ = client.request("POST", f"/v2/models/{MODEL}/infer", body, headers)
                        if status != 200:
                            bad.append(str(status))
                            return
                        answered[index] += 1
                except OSError as error:  # the server closed an idle keep-alive connection while draining
                    refused.append(type(error).__name__)
                finally:
                    client.close()

        threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        server.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(60)
        assert server.process.wait(60) == 0, server.log_text()
    server.wait_for_log(r"answered \d+ inference requests")
    said = int(server.wait_for_log(r"answered (\d+) inference requests").split()[1])
    assert not bad, bad
    assert sum(answered) > 50
    assert said == sum(answered), (said, sum(answered), refused)  # every request the server answered reached its client


def test_sequences_keep_state_per_sequence_id(accumulator_onnx, tmp_path):
    with served(accumulator_onnx, "--state", "total_in:total_out", "--sequence-idle-s", "1") as server:
        client = Client(server.port)
        metadata = _metadata(client, "accumulator")
        assert [t["name"] for t in metadata["inputs"]] == ["x"] and [t["name"] for t in metadata["outputs"]] == ["y"]
        one = np.ones((1, 4), np.float32)

        def step(sequence, value, **flags):
            status, outputs = client.infer("accumulator", {"x": one * value}, parameters={"sequence_id": sequence, **flags})
            return outputs["y"][0, 0] if status == 200 else (status, outputs["error"])

        assert step(1, 1, sequence_start=True) == 1
        assert step(2, 10, sequence_start=True) == 10
        assert step(1, 2) == 3
        assert step("two", 5, sequence_start=True) == 5  # string ids are separate sequences
        assert step(2, 1) == 11
        assert step(1, 4, sequence_end=True) == 7
        status, message = step(1, 1)
        assert status == 400 and "not open" in message
        status, message = client.infer("accumulator", {"x": one})
        assert status == 400 and "sequence_id" in message["error"]
        time.sleep(1.5)  # idle sequences expire
        status, message = step(2, 1)
        assert status == 400 and "idle" in message


def test_state_pairs_come_from_the_manifest(accumulator_onnx, tmp_path):
    from edge_sdk.fileio import sha256_of
    from edge_sdk.manifest import Manifest, TensorSpec, write_manifest

    model = tmp_path / "acc.onnx"
    shutil.copy(accumulator_onnx, model)
    tensors = {name: TensorSpec(name, "float32", [1, 4], batch_axis=None) for name in ("x", "total_in", "y", "total_out")}
    write_manifest(model, Manifest(format="onnx", mode="fp32", sha256=sha256_of(model), size_bytes=model.stat().st_size,
                                   inputs=[tensors["x"], tensors["total_in"]], outputs=[tensors["y"], tensors["total_out"]],
                                   state_pairs=[["total_in", "total_out"]]))
    with served(model) as server:
        client = Client(server.port)
        assert [t["name"] for t in _metadata(client, "acc")["inputs"]] == ["x"]
        for expected, flags in ((2, {"sequence_start": True}), (4, {})):
            status, outputs = client.infer("acc", {"x": np.full((1, 4), 2, np.float32)}, parameters={"sequence_id": 9, **flags})
            assert status == 200 and outputs["y"][0, 0] == expected


def test_replaced_artifact_is_checked_then_swapped_in(digits_artifacts, digits_inputs, run_outputs, tmp_path):
    model = tmp_path / "live.tflite"
    manifest = tmp_path / "live.tflite.manifest.json"
    shutil.copy(digits_artifacts["int8"], model)
    shutil.copy(str(digits_artifacts["int8"]) + ".manifest.json", manifest)
    sample = digits_inputs[1]
    with served(model, "--reload-interval", "0.2") as server:
        client = Client(server.port)
        name = _metadata(client, "live")["inputs"][0]["name"]
        # A broken file (its manifest's sha256 no longer matches): logged, ignored, the old version serves on.
        model.write_bytes(b"not a model" * 100)
        server.wait_for_log(r"live: the replaced .* is ignored, version 1 keeps serving")
        status, outputs = client.infer("live", {name: sample})
        assert status == 200 and np.array_equal(next(iter(outputs.values())), run_outputs["int8"])
        # A good new version with its manifest: loaded beside the old one, then swapped in.
        shutil.copy(str(digits_artifacts["fp32"]) + ".manifest.json", manifest)
        shutil.copy(digits_artifacts["fp32"], model)
        server.wait_for_log(r"live: swapped in version 2")
        status, index = client.request("POST", "/v2/repository/index", b"{}")[0], json.loads(client.request("POST", "/v2/repository/index", b"{}")[2])
        assert status == 200 and index == [{"name": "live", "version": "2", "state": "READY", "reason": ""}]
        status, outputs = client.infer("live", {name: sample})
        assert status == 200 and np.allclose(next(iter(outputs.values())), run_outputs["fp32"], atol=1e-5)


def test_two_artifacts_with_one_name_are_refused(digits_artifacts, tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    result = subprocess.run([sys.executable, "-m", "edge_sdk.cli", "serve", str(digits_artifacts["int8"]), str(digits_artifacts["fp32"]), "--name", "a", "--name", "a"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 2 and "two artifacts would be served as 'a'" in result.stderr and "Traceback" not in result.stderr


def test_a_full_queue_answers_503_with_retry_after_and_a_late_answer_504(slow_onnx):
    x = np.ones((64, 500), np.float32)
    with served(slow_onnx, "--queue-size", "1", "--threads", "1") as server:

        def one(_: int) -> tuple[int, dict, bytes]:
            client = Client(server.port)
            body, headers = encode_infer_request({"x": x})
            answer = client.request("POST", "/v2/models/slow/infer", body, headers)
            client.close()
            return answer

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(one, range(12)))
        statuses = sorted(status for status, _, _ in answers)
        assert 200 in statuses and 503 in statuses, statuses
        busy = next((headers, body) for status, headers, body in answers if status == 503)
        assert busy[0]["retry-after"] == "1" and "requests waiting" in json.loads(busy[1])["error"]
    with served(slow_onnx, "--threads", "1", "--request-timeout", "0.001") as server:
        status, payload = Client(server.port).infer("slow", {"x": x})
        assert status == 504 and "did not answer within" in payload["error"]


def test_loadtest_command_reports_throughput_and_percentiles(digits_artifacts, tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    token = tmp_path / "token"
    token.write_text("t0ken")
    with served(digits_artifacts["int8"], "--token-file", token) as server:
        command = [sys.executable, "-m", "edge_sdk.cli", "loadtest", server.url, "-c", "2", "-t", "1", "--warmup", "0.2", "--token-file", str(token), "--json"]
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["model"] == MODEL and report["errors"] == 0 and report["requests"] > 10
        assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p99"] and report["throughput_rps"] > 0
        unauthorised = subprocess.run(command[:-3] + ["--json"], capture_output=True, text=True, cwd=REPO, timeout=120)
        assert unauthorised.returncode == 2 and "HTTP 401" in unauthorised.stderr and "Traceback" not in unauthorised.stderr
    refused = subprocess.run([sys.executable, "-m", "edge_sdk.cli", "loadtest", server.url, "-t", "1"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert refused.returncode == 2 and "cannot reach" in refused.stderr


def test_start_up_errors_are_one_message_each(digits_artifacts, tmp_path):
    import socket
    import subprocess
    import sys

    from tests.conftest import REPO

    def serve(*args):
        return subprocess.run([sys.executable, "-m", "edge_sdk.cli", "serve", *map(str, args)], capture_output=True, text=True, cwd=REPO, timeout=120)

    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"TFL3" + b"\0" * 100)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cases = [
            (serve(tmp_path / "missing.tflite"), 3, "does not exist"),
            (serve(garbage, "--port", "0"), 3, "garbage.tflite"),
            (serve(digits_artifacts["int8"], "--port", taken.getsockname()[1]), 2, "cannot listen on 127.0.0.1"),
            (serve(digits_artifacts["int8"], "--state", "nocolon"), 2, "must be INPUT:OUTPUT"),
            (serve(digits_artifacts["int8"], "--max-batch", "0"), 2, "--max-batch must be at least 1"),
            (serve(digits_artifacts["int8"], "--token-file", tmp_path / "none"), 2, "cannot be read"),
        ]
    for result, code, text in cases:
        assert result.returncode == code and text in result.stderr and "Traceback" not in result.stderr, (result.returncode, result.stderr)
