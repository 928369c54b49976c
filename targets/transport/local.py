"""Local transport: the "device" is this machine; the work folder is a private temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from edge_sdk.errors import DeviceError
from edge_sdk.fileio import copy_file_atomic
from targets.transport.base import RunOutput, Transport


class LocalTransport(Transport):
    name = "local"

    def __init__(self) -> None:
        self._workdir: str | None = None
        self.host = None
        self.default_python = sys.executable

    def open(self) -> None:
        self._workdir = tempfile.mkdtemp(prefix="edge-sdk-local-")  # mode 0700

    @property
    def workdir(self) -> str:
        if self._workdir is None:
            raise DeviceError("local transport is not open")
        return self._workdir

    def push(self, local: Path, remote_name: str) -> str:
        target = Path(self.workdir) / remote_name
        copy_file_atomic(local, target)
        return str(target)

    def run(self, argv: list[str], timeout_s: float | None = None, path_prepends: dict[str, str] | None = None) -> RunOutput:
        env = dict(os.environ)
        for name, value in (path_prepends or {}).items():
            env[name] = os.pathsep.join(part for part in (value, env.get(name, "")) if part)
        try:
            result = subprocess.run(argv, cwd=self.workdir, env=env, capture_output=True, text=True, timeout=timeout_s, check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as error:
            raise DeviceError(f"{argv[0]} did not finish within {timeout_s:g} s on this machine", fix="raise --timeout") from error
        return RunOutput(result.returncode, result.stdout, result.stderr)

    def pull(self, remote_name: str, local: Path) -> None:
        copy_file_atomic(Path(self.workdir) / remote_name, local)

    def close(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
