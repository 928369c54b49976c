"""The Open Inference Protocol codec (edge_sdk/serve/protocol.py), the sequence store and the names of served models."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from edge_sdk.errors import UsageError
from edge_sdk.serve.protocol import (
    HEADER_LENGTH,
    RequestError,
    decode_infer_response,
    encode_infer_request,
    encode_infer_response,
    parse_infer_request,
)
from edge_sdk.serve.registry import model_names
from edge_sdk.serve.state import SequenceControl, SequenceStore


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.uint8, np.int64, np.float16, np.bool_])
def test_requests_round_trip_in_json_and_binary(binary, dtype):
    rng = np.random.default_rng(0)
    arrays = {"a": (rng.normal(size=(2, 3, 4)) * 50).astype(dtype), "b": np.arange(5).astype(dtype).reshape(5, 1)}
    body, headers = encode_infer_request(arrays, binary=binary, parameters={"sequence_id": 7})
    request = parse_infer_request(body, headers.get(HEADER_LENGTH))
    assert request.parameters["sequence_id"] == 7
    for name, array in arrays.items():
        assert request.inputs[name].dtype == array.dtype and np.array_equal(request.inputs[name], array)
    response, response_headers = encode_infer_response("m", "1", request, {"y": arrays["a"]})
    assert (HEADER_LENGTH in response_headers) == binary
    assert np.array_equal(decode_infer_response(response, response_headers.get(HEADER_LENGTH))["y"], arrays["a"])


def test_outputs_asked_for_one_by_one_in_binary_or_json():
    body = json.dumps({"id": "r1", "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1.5]}],
                       "outputs": [{"name": "p", "parameters": {"binary_data": True}}, {"name": "q"}]}).encode()
    request = parse_infer_request(body)
    assert request.requested_outputs == ["p", "q"] and request.wants_binary("p") and not request.wants_binary("q")
    response, headers = encode_infer_response("m", "1", request, {"p": np.ones((1, 2), np.float32), "q": np.zeros((1,), np.float32)})
    header = json.loads(response[: int(headers[HEADER_LENGTH])])
    assert header["id"] == "r1" and header["outputs"][0]["parameters"] == {"binary_data_size": 8} and header["outputs"][1]["data"] == [0.0]


@pytest.mark.parametrize(("body", "header_length", "message"), [
    (b"{oops", None, "not valid JSON"),
    (b"[]", None, "must be a JSON object"),
    (b'{"inputs": []}', None, "non-empty 'inputs'"),
    (b'{"inputs": [{"name": "x", "datatype": "FP33", "shape": [1], "data": [1]}]}', None, "datatype 'FP33'"),
    (b'{"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}', None, "datatype 'BYTES'"),
    (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1], "data": [1]}]}', None, "non-negative integers"),
    (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1]}]}', None, "do not fill shape"),
    (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": ["a"]}]}', None, "not a list of FP32"),
    (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]}', None, "neither 'data' nor"),
    (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}, {"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}', None, "given twice"),
    (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}}]}|\x00\x00', "auto", "ends before"),
    (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 4}}]}|', "auto", "does not match shape"),
    (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}|extra', "auto", "no input claims"),
    (b'{}', "x", "not an integer"),
    (b'{}', "99", "outside the body"),
])
def test_malformed_requests_are_400_with_a_message(body, header_length, message):
    if header_length == "auto":  # JSON|binary tail: the header gives the JSON's length
        header_length = str(body.index(b"|"))
        body = body.replace(b"|", b"", 1)
    with pytest.raises(RequestError, match=message) as caught:
        parse_infer_request(body, header_length)
    assert caught.value.status == 400


def test_sequences_start_continue_end_and_expire():
    store = SequenceStore(idle_s=0.2)
    zero = {"s": np.zeros(2, np.float32)}
    with store.use("m", SequenceControl(1, start=True), zero) as sequence:
        sequence.state = {"s": sequence.state["s"] + 1}
    with store.use("m", SequenceControl(1), zero) as sequence:
        assert sequence.state["s"].tolist() == [1.0, 1.0]
    with store.use("m", SequenceControl(1, end=True), zero):
        pass
    with pytest.raises(RequestError, match="not open"):
        with store.use("m", SequenceControl(1), zero):
            pass
    with store.use("m", SequenceControl("b", start=True), zero):
        pass
    time.sleep(0.3)
    assert store.expire() == 1 and len(store) == 0
    with pytest.raises(RequestError, match="sequence_id"):
        SequenceControl.from_parameters("m", {"sequence_start": True})


def test_model_names_from_files_or_flags_and_duplicates_refused(tmp_path):
    assert model_names([tmp_path / "a.tflite", tmp_path / "b.onnx"], None) == [(tmp_path / "a.tflite", "a"), (tmp_path / "b.onnx", "b")]
    assert model_names([tmp_path / "a.tflite"], ["digits"]) == [(tmp_path / "a.tflite", "digits")]
    with pytest.raises(UsageError, match="two artifacts would be served as 'a'"):
        model_names([tmp_path / "x" / "a.tflite", tmp_path / "y" / "a.onnx"], None)
    with pytest.raises(UsageError, match="--name"):
        model_names([tmp_path / "a.tflite"], ["p", "q"])
