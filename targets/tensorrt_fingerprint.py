"""Fingerprints of TensorRT engines: what an engine is tied to, its cache key, and the compatibility check.

A TensorRT engine runs only where it was built: the same TensorRT version and GPU (compute capability),
and NVIDIA documents no promise across CUDA or driver versions. So an engine's fingerprint is the device
it was built on (TensorRT, CUDA and driver versions, GPU name, compute capability) plus what it was built
from (the ONNX file's sha256) and how (the build options). The fingerprint keys the engine cache on the
device; its device half decides whether a runner may load the engine.

Pure logic, standard library only: unit-tested everywhere, TensorRT or not.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

FINGERPRINT_VERSION = 1
# Relative to the device user's home: ~/.cache/edge-sdk/engines/<fingerprint>.engine
ENGINE_CACHE_DIR = "~/.cache/edge-sdk/engines"
# Build options that change the engine. The timing cache file only changes how long the build takes.
ENGINE_OPTION_KEYS = ("mode", "workspace_mb", "dla_core", "gpu_fallback", "strongly_typed", "input_shapes", "optimization_level")


@dataclass(frozen=True)
class DeviceInfo:
    """The software and GPU an engine is built on or loaded on."""

    tensorrt_version: str
    cuda_version: str  # CUDA runtime version, e.g. "12.6"
    driver_version: str  # CUDA driver API version, e.g. "12.8"
    gpu_name: str
    compute_capability: str  # "8.7" (Orin), "9.0" (H100)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> DeviceInfo:
        missing = [name for name in cls.__dataclass_fields__ if name not in payload]
        if missing:
            raise ValueError(f"device record lacks {', '.join(missing)}")
        return cls(**{name: str(payload[name]) for name in cls.__dataclass_fields__})


def engine_options(options: dict[str, Any]) -> dict[str, Any]:
    """The build options that change the engine, in a canonical form (sorted keys, defaults filled)."""
    return {key: options.get(key) for key in ENGINE_OPTION_KEYS}


def engine_fingerprint(device: DeviceInfo, onnx_sha256: str, options: dict[str, Any]) -> str:
    """The cache key of an engine: 32 hex digits over device, ONNX hash and engine-relevant options."""
    payload = {"version": FINGERPRINT_VERSION, "device": device.to_dict(), "onnx_sha256": onnx_sha256, "options": engine_options(options)}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def fingerprint_record(device: DeviceInfo, onnx_sha256: str, options: dict[str, Any]) -> dict[str, Any]:
    """What the manifest stores under "fingerprint": the key and everything it was computed from."""
    return {
        "version": FINGERPRINT_VERSION,
        "key": engine_fingerprint(device, onnx_sha256, options),
        "device": device.to_dict(),
        "onnx_sha256": onnx_sha256,
        "options": engine_options(options),
    }


def cached_engine_name(fingerprint: str) -> str:
    """File name of an engine in the device cache; refuses anything but a hex key (it becomes a path)."""
    if not fingerprint or any(c not in "0123456789abcdef" for c in fingerprint):
        raise ValueError(f"not an engine fingerprint: {fingerprint!r}")
    return f"{fingerprint}.engine"


def device_mismatches(recorded: DeviceInfo, current: DeviceInfo) -> list[str]:
    """Each device property where the engine's build device differs from this one, as 'name: built X, here Y'."""
    mismatches = []
    for name in DeviceInfo.__dataclass_fields__:
        built, here = getattr(recorded, name), getattr(current, name)
        if built != here:
            mismatches.append(f"{name.replace('_', ' ')}: built with {built}, here {here}")
    return mismatches


def compatibility_problems(manifest: dict[str, Any], current: DeviceInfo) -> list[str]:
    """Why an engine whose manifest details (edge_sdk.manifest.Manifest.details) are `manifest` cannot run on
    `current` (empty when it can).

    The ONNX hash and options are not checked here: they say what the engine computes, not where it runs.
    """
    record = manifest.get("fingerprint")
    if not isinstance(record, dict) or not isinstance(record.get("device"), dict):
        return ["the manifest has no engine fingerprint (not built by edge-sdk, or an older manifest)"]
    if record.get("version") != FINGERPRINT_VERSION:
        return [f"fingerprint version {record.get('version')} is not {FINGERPRINT_VERSION}"]
    try:
        recorded = DeviceInfo.from_dict(record["device"])
    except ValueError as error:
        return [str(error)]
    return device_mismatches(recorded, current)
