"""Target profiles: what a device is (architecture, preferred formats and runtimes, threads, delegates) and how
it is reached (transport). Profiles are data; the built-in ones live in one module per device family
(targets/desktop.py, raspberry_pi.py, jetson.py, android.py) and users add their own in YAML.

A user profile file holds one mapping or a list of mappings with the fields of `TargetProfile`:

    name: my-pi-zero
    description: Raspberry Pi Zero 2 W, 64-bit OS
    architecture: aarch64
    formats: [tflite]
    runtimes: [litert]
    threads: 4
    transport: ssh

Files are read from $EDGE_SDK_TARGETS (a file or a folder of *.yaml), else $XDG_CONFIG_HOME/edge-sdk/targets/*.yaml
(~/.config when XDG_CONFIG_HOME is not set).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_sdk.errors import UsageError
from edge_sdk.formats import runtimes_for

TRANSPORTS = ("local", "ssh", "adb")
# The module that defines each family of built-in profiles (a PROFILES list in each).
BUILTIN_MODULES = ("targets.desktop", "targets.raspberry_pi", "targets.jetson", "targets.android")
USER_TARGETS_ENV = "EDGE_SDK_TARGETS"


@dataclass(frozen=True)
class TargetProfile:
    """One kind of device. `runtimes` and `formats` are in order of preference."""

    name: str
    description: str
    architecture: str
    formats: tuple[str, ...]
    runtimes: tuple[str, ...]
    transport: str
    threads: int | None = None
    xnnpack: bool = True
    providers: tuple[str, ...] = ()  # ONNX Runtime execution providers, in order
    delegates: tuple[str, ...] = ()  # TFLite delegates the device offers (xnnpack, gpu, nnapi)
    python: str = "python3"  # interpreter on the device (ssh); a venv's python on Raspberry Pi OS bookworm
    install: str = "pip install 'edge-sdk[pi]'"  # how to get the slim runner's runtimes on the device
    source: str = "built-in"

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise UsageError(f"target {self.name!r}: transport {self.transport!r} is not one of {', '.join(TRANSPORTS)}")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"target {self.name!r}: threads {self.threads} must be at least 1")
        if not self.runtimes:
            raise UsageError(f"target {self.name!r} names no runtime")

    def runtime_for(self, model_format: str) -> str:
        """The runtime this target uses for a model format ('tflite' -> 'litert', 'onnx' -> 'onnxruntime')."""
        wanted = runtimes_for(model_format)
        for runtime in self.runtimes:
            if runtime in wanted:
                return runtime
        raise UsageError(
            f"target {self.name!r} runs {', '.join(self.runtimes)}, nothing for a {model_format} model",
            fix=f"convert to one of its formats ({', '.join(self.formats)}) or pick another --target",
        )

    def to_dict(self) -> dict[str, Any]:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, payload: dict[str, Any], source: str) -> TargetProfile:
        known = {f.name for f in dataclasses.fields(cls)} - {"source"}
        if not isinstance(payload, dict) or "name" not in payload:
            raise UsageError(f"target profile in {source} must be a mapping with at least a name")
        unknown = sorted(set(payload) - known)
        if unknown:
            raise UsageError(f"target {payload['name']!r} in {source}: unknown fields {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        missing = sorted({"description", "architecture", "formats", "runtimes", "transport"} - set(payload))
        if missing:
            raise UsageError(f"target {payload['name']!r} in {source} lacks {', '.join(missing)}")
        values = {key: tuple(value) if isinstance(value, list) else value for key, value in payload.items()}
        return cls(**values, source=source)


def builtin_profiles() -> list[TargetProfile]:
    import importlib

    return [profile for module in BUILTIN_MODULES for profile in importlib.import_module(module).PROFILES]


def config_home() -> Path:
    """$XDG_CONFIG_HOME when set to an absolute path (the XDG Base Directory rule), else ~/.config."""
    configured = os.environ.get("XDG_CONFIG_HOME", "")
    return Path(configured) if configured and Path(configured).is_absolute() else Path.home() / ".config"


def user_profile_files() -> list[Path]:
    configured = os.environ.get(USER_TARGETS_ENV)
    root = Path(configured) if configured else config_home() / "edge-sdk" / "targets"
    if root.is_file():
        return [root]
    if configured and not root.exists():
        raise UsageError(f"${USER_TARGETS_ENV}={configured} does not exist", fix="point it at a YAML file or a folder of *.yaml")
    return sorted([*root.glob("*.yaml"), *root.glob("*.yml")]) if root.is_dir() else []


def load_profile_file(path: Path) -> list[TargetProfile]:
    """Profiles from one YAML file (one mapping or a list of them)."""
    from edge_sdk._lazy import require

    yaml = require("yaml", f"the target profiles in {path}")
    try:
        payload = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"target profile file {path} is not readable YAML: {error}") from error
    entries = payload if isinstance(payload, list) else [payload]
    return [TargetProfile.from_dict(entry, str(path)) for entry in entries]


def all_profiles(extra_files: list[Path] | None = None) -> dict[str, TargetProfile]:
    """Built-in profiles, then user files (a user profile of the same name replaces the built-in one)."""
    profiles = {profile.name: profile for profile in builtin_profiles()}
    for path in [*user_profile_files(), *(extra_files or [])]:
        for profile in load_profile_file(path):
            profiles[profile.name] = profile
    return profiles


def get_profile(name: str, extra_files: list[Path] | None = None) -> TargetProfile:
    """The profile called `name`; an unknown name is a UsageError listing the known ones."""
    profiles = all_profiles(extra_files)
    if name not in profiles:
        import difflib

        close = difflib.get_close_matches(name, list(profiles), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(f"unknown target {name!r}; known targets: {', '.join(profiles)}", fix=f"{hint}list them with `edge-sdk targets`")
    return profiles[name]
