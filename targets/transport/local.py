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
        super().__init__(host=None, default_python=sys.executable)

    def open_impl(self) -> str:
        return tempfile.mkdtemp(prefix="edge-sdk-local-")  # mode 0700

    def push_impl(self, local: Path, remote_path: str) -> None:
        copy_file_atomic(local, Path(remote_path))

    def run_impl(self, argv: list[str], timeout_s: float | None, path_prepends: dict[str, str]) -> RunOutput:
        env = dict(os.environ)
        for name, value in path_prepends.items():
            env[name] = os.pathsep.join(part for part in (value, env.get(name, "")) if part)
        try:
            result = subprocess.run(argv, cwd=self.workdir, env=env, capture_output=True, text=True, timeout=timeout_s, check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as error:
            raise DeviceError(f"{argv[0]} did not finish within {timeout_s:g} s on this machine", fix="raise --timeout") from error
        return RunOutput(result.returncode, result.stdout, result.stderr)

    def pull_impl(self, remote_path: str, local: Path) -> None:
        copy_file_atomic(Path(remote_path), local)

    def close_impl(self, workdir: str) -> None:
        shutil.rmtree(workdir, ignore_errors=True)
