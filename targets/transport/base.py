"""The transport interface: push / run / pull / close, as a context manager.

A transport owns one temporary work folder on the device for its lifetime (created with
owner-only permissions on open, removed on close). Paths given to push/pull are relative to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class RunOutput:
    """What a command on the device returned."""

    returncode: int
    stdout: str
    stderr: str


class Transport:
    """Base class. Subclasses implement open/push/run/pull/close."""

    name = "base"

    def open(self) -> None:
        """Connect and create the work folder."""
        raise NotImplementedError

    @property
    def workdir(self) -> str:
        """Absolute path of the work folder on the device."""
        raise NotImplementedError

    def push(self, local: Path, remote_name: str) -> str:
        """Copy a local file or folder into the work folder; returns its path on the device."""
        raise NotImplementedError

    def run(self, argv: list[str], timeout_s: float | None = None) -> RunOutput:
        """Run a command (argv, quoted by the transport) in the work folder on the device."""
        raise NotImplementedError

    def pull(self, remote_name: str, local: Path) -> None:
        """Copy a file from the work folder to `local`."""
        raise NotImplementedError

    def close(self) -> None:
        """Remove the work folder and disconnect. Safe to call twice."""
        raise NotImplementedError

    def __enter__(self) -> Transport:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
