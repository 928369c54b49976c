"""What device a measurement ran on, as the slim runner records it: CPU, cores, architecture, OS and runtime
versions (edge_sdk.environment), plus where readable the board model, CPU frequency governor, temperature,
Raspberry Pi throttling flags (`vcgencmd get_throttled`) and Jetson power mode (`nvpmodel -q`).

Imports nothing beyond the standard library; every probe that cannot be read is left out, never guessed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from edge_sdk.environment import describe_machine

PROBE_TIMEOUT_S = 5.0
# Bits of `vcgencmd get_throttled` (Raspberry Pi firmware documentation, "vcgencmd get_throttled").
THROTTLED_BITS = {
    0: "under-voltage detected",
    1: "arm frequency capped",
    2: "currently throttled",
    3: "soft temperature limit active",
    16: "under-voltage has occurred",
    17: "arm frequency capping has occurred",
    18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip().strip("\x00") or None
    except OSError:
        return None


def _command(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


def os_release() -> str | None:
    text = _read("/etc/os-release")
    for line in (text or "").splitlines():
        key, _, value = line.partition("=")
        if key == "PRETTY_NAME":
            return value.strip().strip('"')
    return None


def temperature_c() -> float | None:
    raw = _read("/sys/class/thermal/thermal_zone0/temp")
    try:
        return round(int(raw) / 1000.0, 1) if raw is not None else None
    except ValueError:
        return None


def parse_throttled(text: str) -> dict[str, Any]:
    """`throttled=0x50005` -> its value and the names of the bits that are set."""
    value = int(text.split("=", 1)[-1].strip(), 16)
    return {"raw": hex(value), "flags": [name for bit, name in THROTTLED_BITS.items() if value & (1 << bit)]}


def throttled() -> dict[str, Any] | None:
    text = _command(["vcgencmd", "get_throttled"])
    try:
        return parse_throttled(text) if text else None
    except ValueError:
        return {"raw": text, "flags": []}


def jetson_power_mode() -> str | None:
    # `nvpmodel -q` prints "NV Power Mode: 15W" then the mode number; the first line names it.
    text = _command(["nvpmodel", "-q"])
    return text.splitlines()[0].split(":", 1)[-1].strip() if text else None


def describe_device() -> dict[str, Any]:
    """describe_machine() plus the device probes that are readable here (unreadable ones are absent)."""
    device = describe_machine()
    probes = {
        "os_release": os_release(),
        "board": _read("/proc/device-tree/model"),
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "temperature_c": temperature_c(),
        "throttled": throttled(),
        "jetson_power_mode": jetson_power_mode(),
    }
    device.update({key: value for key, value in probes.items() if value is not None})
    return device
