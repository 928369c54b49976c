"""The Open Inference Protocol (KServe v2) request and response codec, with the binary-tensor extension.

Framework-free (bytes in, bytes out) so that any HTTP stack can carry it. References: KServe's
docs/predict-api/v2/required_api.md and Triton's binary_tensor_data_extension.md: a request or response body is a
JSON header followed by raw tensor bytes when the `Inference-Header-Content-Length` header gives the JSON's length;
each binary tensor says its byte size in `parameters.binary_data_size`, in the order the tensors are listed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_sdk.errors import DataError

HEADER_LENGTH = "inference-header-content-length"  # HTTP header names are case-insensitive

V2_TO_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16), "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64), "INT8": np.dtype(np.int8), "INT16": np.dtype(np.int16), "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64), "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64),
}
NUMPY_TO_V2 = {dtype: name for name, dtype in V2_TO_NUMPY.items()}


class RequestError(DataError):
    """A request the server refuses; `status` is the HTTP status it answers with (4xx, or 503 when busy)."""

    def __init__(self, message: str, status: int = 400, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def v2_datatype(dtype: np.dtype) -> str:
    """The protocol's name for a numpy dtype (np.float32 -> "FP32")."""
    try:
        return NUMPY_TO_V2[np.dtype(dtype)]
    except KeyError:
        raise DataError(f"numpy dtype {dtype} has no Open Inference Protocol datatype") from None


@dataclass
class InferRequest:
    """A decoded inference request: named input arrays and what the client wants back."""

    inputs: dict[str, np.ndarray]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    requested_outputs: list[str] | None = None  # None: every output
    binary_outputs: set[str] = field(default_factory=set)
    binary_by_default: bool = False

    def wants_binary(self, name: str) -> bool:
        return name in self.binary_outputs or self.binary_by_default


def _json_object(data: bytes, where: str) -> dict[str, Any]:
    try:
        payload = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(f"{where} is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise RequestError(f"{where} must be a JSON object")
    return payload


def _shape(value: Any, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value):
        raise RequestError(f"input {name!r}: shape must be a list of non-negative integers, got {value!r}")
    return tuple(value)


def _parameters(entry: dict[str, Any], where: str) -> dict[str, Any]:
    parameters = entry.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError(f"{where}: parameters must be a JSON object")
    return parameters


def parse_infer_request(body: bytes, header_length: str | None = None) -> InferRequest:
    """Decode a POST /v2/models/{name}/infer body; RequestError (400) names what is wrong."""
    json_length = len(body)
    if header_length is not None:
        try:
            json_length = int(header_length)
        except ValueError:
            raise RequestError(f"Inference-Header-Content-Length {header_length!r} is not an integer") from None
        if not 0 <= json_length <= len(body):
            raise RequestError(f"Inference-Header-Content-Length {json_length} is outside the body's {len(body)} bytes")
    payload = _json_object(body[:json_length], "the request body")
    binary = memoryview(body)[json_length:]
    entries = payload.get("inputs")
    if not isinstance(entries, list) or not entries:
        raise RequestError("the request needs a non-empty 'inputs' list")
    offset = 0
    inputs: dict[str, np.ndarray] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise RequestError("every input needs a 'name'")
        name = entry["name"]
        if name in inputs:
            raise RequestError(f"input {name!r} is given twice")
        datatype = entry.get("datatype")
        if datatype not in V2_TO_NUMPY:
            raise RequestError(f"input {name!r}: datatype {datatype!r} is not supported (use one of {', '.join(V2_TO_NUMPY)})")
        dtype = V2_TO_NUMPY[datatype]
        shape = _shape(entry.get("shape"), name)
        count = math.prod(shape)
        size = _parameters(entry, f"input {name!r}").get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size != count * dtype.itemsize:
                raise RequestError(f"input {name!r}: binary_data_size {size!r} does not match shape {list(shape)} of {datatype} ({count * dtype.itemsize} bytes)")
            if offset + size > len(binary):
                raise RequestError(f"input {name!r}: the body ends before its {size} bytes of binary data")
            array = np.frombuffer(binary[offset : offset + size], dtype=dtype.newbyteorder("<")).astype(dtype, copy=False)
            offset += size
        else:
            if "data" not in entry:
                raise RequestError(f"input {name!r} has neither 'data' nor parameters.binary_data_size")
            try:
                array = np.asarray(entry["data"], dtype=dtype)
            except (TypeError, ValueError, OverflowError) as error:
                raise RequestError(f"input {name!r}: data is not a list of {datatype} values: {error}") from None
            if array.size != count:
                raise RequestError(f"input {name!r}: {array.size} values do not fill shape {list(shape)} ({count} values)")
        inputs[name] = array.reshape(shape)
    if offset != len(binary):
        raise RequestError(f"the body has {len(binary) - offset} bytes of binary data that no input claims")
    request_parameters = _parameters(payload, "the request")
    requested: list[str] | None = None
    binary_outputs: set[str] = set()
    if payload.get("outputs") is not None:
        if not isinstance(payload["outputs"], list):
            raise RequestError("'outputs' must be a list")
        requested = []
        for entry in payload["outputs"]:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise RequestError("every requested output needs a 'name'")
            requested.append(entry["name"])
            if _parameters(entry, f"output {entry['name']!r}").get("binary_data"):
                binary_outputs.add(entry["name"])
    request_id = payload.get("id")
    return InferRequest(
        inputs=inputs, id=str(request_id) if request_id is not None else None, parameters=request_parameters,
        requested_outputs=requested, binary_outputs=binary_outputs, binary_by_default=bool(request_parameters.get("binary_data_output")),
    )


def encode_infer_response(model_name: str, model_version: str, request: InferRequest, outputs: dict[str, np.ndarray]) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers; outputs the request asked for in binary follow the JSON header."""
    entries, blobs = encode_tensors(outputs, request.wants_binary)
    payload: dict[str, Any] = {"model_name": model_name, "model_version": model_version, "outputs": entries}
    if request.id is not None:
        payload["id"] = request.id
    header = json.dumps(payload, separators=(",", ":")).encode()
    if not blobs:
        return header, {"content-type": "application/json"}
    return header + b"".join(blobs), {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(header))}


def encode_tensors(tensors: dict[str, np.ndarray], binary: Callable[[str], bool]) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Tensor entries of a request or response body; those `binary(name)` picks travel as little-endian raw bytes
    after the JSON header (the binary-tensor extension), the others as JSON `data`."""
    entries, blobs = [], []
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        entry: dict[str, Any] = {"name": name, "datatype": v2_datatype(array.dtype), "shape": list(array.shape)}
        if binary(name):
            blob = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = array.ravel().tolist()
        entries.append(entry)
    return entries, blobs


def json_body(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def error_body(message: str) -> bytes:
    """The protocol's error object: {"error": "message"}."""
    return json_body({"error": message})


# --- the client side (the load generator and the tests' own checks) --------------------------------------------
def encode_infer_request(inputs: dict[str, np.ndarray], *, binary: bool = True, parameters: dict[str, Any] | None = None) -> tuple[bytes, dict[str, str]]:
    """A request body for `inputs`; with `binary`, tensors travel as raw bytes and outputs are asked for in binary."""
    entries, blobs = encode_tensors(inputs, lambda name: binary)
    payload: dict[str, Any] = {"inputs": entries, "parameters": {**(parameters or {}), "binary_data_output": binary}}
    header = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"content-type": "application/octet-stream" if binary else "application/json"}
    if binary:
        headers[HEADER_LENGTH] = str(len(header))
    return header + b"".join(blobs), headers


def decode_infer_response(body: bytes, header_length: str | None = None) -> dict[str, np.ndarray]:
    """The output arrays of a response body (JSON or binary)."""
    json_length = int(header_length) if header_length is not None else len(body)
    payload = _json_object(body[:json_length], "the response body")
    offset = json_length
    outputs = {}
    for entry in payload.get("outputs", []):
        dtype = V2_TO_NUMPY[entry["datatype"]]
        size = (entry.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            array = np.frombuffer(body[offset : offset + size], dtype=dtype.newbyteorder("<")).astype(dtype)
            offset += size
        else:
            array = np.asarray(entry["data"], dtype=dtype)
        outputs[entry["name"]] = array.reshape(entry["shape"])
    return outputs
