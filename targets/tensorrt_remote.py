"""Build a TensorRT engine on a device over a transport, cached there by fingerprint.

The engine must be built where it runs, so the host only orchestrates:
1. push targets/tensorrt_build.py (standard library + TensorRT) and run `python3 tensorrt_build.py probe`:
   the device's TensorRT / CUDA / driver versions, GPU name and compute capability;
2. compute the fingerprint here (device + ONNX sha256 + build options) and ask the device for
   ~/.cache/edge-sdk/engines/<fingerprint>.engine: a hit reuses it and the ONNX is never shipped;
3. on a miss, push the ONNX and build into the cache; copy the engine into the work folder if asked;
4. pull the engine back when `fetch_engine` is set. The caller writes the manifest.

Coded against targets.transport.base.Transport only (ssh or local).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_sdk.errors import ConversionError, EdgeSdkError, MissingDependencyError, RuntimeFailure, UsageError
from targets import tensorrt_build
from targets.tensorrt_build import BuildSettings
from targets.tensorrt_fingerprint import ENGINE_CACHE_DIR, DeviceInfo, engine_fingerprint
from targets.transport.base import RunOutput, Transport

SCRIPT_NAME = "tensorrt_build.py"
ENGINE_NAME = "engine.engine"
BUILD_TIMEOUT_S = 3600.0  # an INT8 build of a large model on an Orin Nano takes many minutes


@dataclass
class RemoteBuild:
    """What the device did: its description, the fingerprint, and whether the cache answered."""

    device: DeviceInfo
    fingerprint: str
    cached: bool
    engine_path_on_device: str
    size_bytes: int
    sha256: str
    build_seconds: float
    fetched: bool


def sdk_error(payload: dict[str, Any], host: str) -> EdgeSdkError:
    """The SDK exception for a build script failure ({kind, message, fix})."""
    message = f"on {host}: {payload.get('message', 'the build script failed')}"
    fix = payload.get("fix") or None
    kind = payload.get("kind")
    if kind == "missing":
        return MissingDependencyError(message, fix=fix)
    if kind == "usage":
        return UsageError(message, fix=fix)
    return ConversionError(message, fix=fix)


def _answer(output: RunOutput, host: str, what: str) -> dict[str, Any]:
    """The JSON object the build script printed last; an error it reported becomes the matching exception."""
    last_line = output.stdout.strip().splitlines()[-1] if output.stdout.strip() else ""
    try:
        payload = json.loads(last_line)
    except json.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        detail = (output.stderr.strip() or output.stdout.strip() or f"exit status {output.returncode}")[-2000:]
        raise RuntimeFailure(f"{what} on {host} did not answer (exit status {output.returncode}): {detail}",
                             fix="check that python3 runs on the device: ssh HOST python3 --version")
    if not payload.get("ok"):
        raise sdk_error(payload, host)
    return payload


def build_on_device(
    transport: Transport, onnx_path: Path, onnx_sha256: str, settings: BuildSettings, *, host: str,
    fetch_engine_to: Path | None = None, cache_dir: str = ENGINE_CACHE_DIR, python: str = "python3",
) -> RemoteBuild:
    """Probe, look up the cache, build when needed, and optionally fetch the engine. `transport` must be open."""
    transport.push(Path(tensorrt_build.__file__), SCRIPT_NAME)
    device = DeviceInfo.from_dict(_answer(transport.run([python, SCRIPT_NAME, "probe"], timeout_s=120), host, "the device probe")["device"])
    fingerprint = engine_fingerprint(device, onnx_sha256, settings.to_dict())
    # The timing cache lives beside the engines on the device; the host's --timing-cache path means nothing there.
    remote_settings = BuildSettings(**{**settings.to_dict(), "timing_cache": f"{cache_dir}/timing-{device.tensorrt_version}-sm{device.compute_capability}.cache"})
    command = [python, SCRIPT_NAME, "build", "--fingerprint", fingerprint, "--cache-dir", cache_dir, "--settings", json.dumps(remote_settings.to_dict())]
    if fetch_engine_to is not None:
        command += ["--copy-to", ENGINE_NAME]
    result = _answer(transport.run(command, timeout_s=120), host, "the engine cache lookup")
    if result.get("needs_onnx"):
        onnx_on_device = transport.push(Path(onnx_path), "model.onnx")
        result = _answer(transport.run(command + ["--onnx", onnx_on_device], timeout_s=BUILD_TIMEOUT_S), host, "the engine build")
    if fetch_engine_to is not None:
        transport.pull(ENGINE_NAME, fetch_engine_to)
    return RemoteBuild(device, fingerprint, bool(result["cached"]), str(result["engine"]), int(result["size_bytes"]),
                       str(result["sha256"]), float(result["build_seconds"]), fetch_engine_to is not None)
