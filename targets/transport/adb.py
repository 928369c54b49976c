"""adb transport (Android): `adb push` / `adb shell` / `adb pull` into a private folder under /data/local/tmp.

Not run on a device here (no Android device or emulator in CI): tests check the command lines it builds.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from edge_sdk.errors import DeviceError
from targets.transport.base import RunOutput, Transport
from targets.transport.ssh import remote_command

DEVICE_TMP = "/data/local/tmp"


def parse_adb_url(url: str) -> str | None:
    """`adb://SERIAL` -> SERIAL; `adb://` or `adb` -> None (the only attached device)."""
    if url in ("adb", "adb://"):
        return None
    if not url.startswith("adb://"):
        raise DeviceError(f"{url!r} is not an adb address", fix="write adb://SERIAL (see `adb devices`) or adb://")
    return url[len("adb://"):] or None


class AdbTransport(Transport):
    name = "adb"

    def __init__(self, url: str = "adb://", adb: str = "adb", timeout_s: float = 600) -> None:
        super().__init__(host=url, default_python=None)
        self.serial = parse_adb_url(url)
        self._adb = adb
        self._timeout_s = timeout_s

    def adb_argv(self, *args: str) -> list[str]:
        """The adb command line for `args`, aimed at this device."""
        return [self._adb, *(("-s", self.serial) if self.serial else ()), *args]

    def open_impl(self) -> str:
        made = self._adb_run(self.adb_argv("shell", f"mktemp -d {DEVICE_TMP}/edge-sdk.XXXXXXXX"), self._timeout_s)
        if made.returncode != 0 or not made.stdout.strip():
            raise DeviceError(f"cannot create a work folder on {self.host}: {made.stderr.strip() or made.stdout.strip()}")
        return made.stdout.strip().splitlines()[-1]

    def push_impl(self, local: Path, remote_path: str) -> None:
        pushed = self._adb_run(self.adb_argv("push", str(local), remote_path), self._timeout_s)
        if pushed.returncode != 0:
            raise DeviceError(f"adb push {local} failed: {pushed.stderr.strip() or pushed.stdout.strip()}")

    def run_impl(self, argv: list[str], timeout_s: float | None, path_prepends: dict[str, str]) -> RunOutput:
        return self._adb_run(self.adb_argv("shell", remote_command(argv, self.workdir, path_prepends)), timeout_s)

    def pull_impl(self, remote_path: str, local: Path) -> None:
        pulled = self._adb_run(self.adb_argv("pull", remote_path, str(local)), self._timeout_s)
        if pulled.returncode != 0:
            raise DeviceError(f"adb pull {remote_path} failed: {pulled.stderr.strip()}")

    def close_impl(self, workdir: str) -> None:
        try:
            self._adb_run(self.adb_argv("shell", f"rm -rf {shlex.quote(workdir)}"), 60)
        except DeviceError:
            pass  # the device is gone

    def _adb_run(self, argv: list[str], timeout_s: float | None) -> RunOutput:
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False, stdin=subprocess.DEVNULL)
        except FileNotFoundError as error:
            raise DeviceError(f"adb ({self._adb}) is not installed", fix="install Android platform-tools and put adb on PATH") from error
        except subprocess.TimeoutExpired as error:
            raise DeviceError(f"{self.host} did not answer within {timeout_s} s", fix="raise --timeout, check `adb devices`") from error
        if "no devices/emulators found" in result.stderr or "device offline" in result.stderr or "not found" in result.stderr and "device" in result.stderr:
            raise DeviceError(f"adb cannot reach {self.host}: {result.stderr.strip()}", fix="check `adb devices` lists the device as 'device'")
        return RunOutput(result.returncode, result.stdout, result.stderr)
