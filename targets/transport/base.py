"""The transport interface: push / run / pull / close, as a context manager.

A transport owns one temporary work folder on the device for its lifetime (created with owner-only permissions
on open, removed on close). Names given to push/pull are plain file names inside it.

The base class owns what every transport must do the same way, so no subclass can drift (as httpx's
`BaseTransport` owns the interface and each transport fills in one method): the work-folder bookkeeping, the
check of push/pull names and of environment names, and the full public signatures. A transport implements only
the `*_impl` hooks: make/remove the folder, copy a file in or out, run one command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from edge_sdk.errors import DeviceError, UsageError

_PLAIN_NAME = re.compile(r"[A-Za-z0-9._+-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class RunOutput:
    """What a command on the device returned."""

    returncode: int
    stdout: str
    stderr: str


def checked_name(name: str) -> str:
    """`name` when it is a plain file name (letters, digits, ._+-), else UsageError.

    Names on the device are ours; keeping them plain means no path escapes the work folder and nothing a remote
    shell or scp's SFTP mode would expand (globs, spaces, `;`)."""
    if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name) or name in (".", ".."):
        raise UsageError(f"remote file name {name!r} must be letters, digits and ._+- only")
    return name


def checked_env_names(path_prepends: dict[str, str] | None) -> dict[str, str]:
    """`path_prepends` (or {}) when every key is an environment variable name, else UsageError."""
    for name in path_prepends or {}:
        if not _ENV_NAME.fullmatch(name):
            raise UsageError(f"{name!r} is not an environment variable name")
    return dict(path_prepends or {})


class Transport:
    """Base class of every transport. Subclasses set `name` and implement the `*_impl` hooks only."""

    name = "base"

    def __init__(self, host: str | None = None, default_python: str | None = None) -> None:
        self.host = host
        self.default_python = default_python  # interpreter on the device when the profile names none
        self._workdir: str | None = None

    # --- public interface (not overridden) -----------------------------------------------------
    def open(self) -> None:
        """Connect and create the work folder."""
        self._workdir = self.open_impl()

    @property
    def workdir(self) -> str:
        """Absolute path of the work folder on the device."""
        if self._workdir is None:
            raise DeviceError(f"{self.name} transport to {self.host or 'this machine'} is not open")
        return self._workdir

    def push(self, local: Path, remote_name: str) -> str:
        """Copy a local file into the work folder as `remote_name`; returns its path on the device."""
        remote = f"{self.workdir}/{checked_name(remote_name)}"
        self.push_impl(Path(local), remote)
        return remote

    def run(self, argv: list[str], timeout_s: float | None = None, path_prepends: dict[str, str] | None = None) -> RunOutput:
        """Run a command (argv, quoted by the transport) in the work folder on the device.

        `path_prepends` maps environment variables (PYTHONPATH) to a value put in front of their current value."""
        return self.run_impl(list(argv), timeout_s, checked_env_names(path_prepends))

    def pull(self, remote_name: str, local: Path) -> None:
        """Copy the file `remote_name` from the work folder to `local`."""
        self.pull_impl(f"{self.workdir}/{checked_name(remote_name)}", Path(local))

    def close(self) -> None:
        """Remove the work folder and disconnect. Safe to call twice."""
        workdir, self._workdir = self._workdir, None
        if workdir is not None:
            self.close_impl(workdir)

    def __enter__(self) -> Transport:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what each transport implements --------------------------------------------------------
    def open_impl(self) -> str:
        """Create a private work folder on the device; return its absolute path."""
        raise NotImplementedError

    def push_impl(self, local: Path, remote_path: str) -> None:
        """Copy `local` to `remote_path` (inside the work folder, name already checked)."""
        raise NotImplementedError

    def run_impl(self, argv: list[str], timeout_s: float | None, path_prepends: dict[str, str]) -> RunOutput:
        """Run `argv` in the work folder (environment names already checked)."""
        raise NotImplementedError

    def pull_impl(self, remote_path: str, local: Path) -> None:
        """Copy `remote_path` (inside the work folder, name already checked) to `local`."""
        raise NotImplementedError

    def close_impl(self, workdir: str) -> None:
        """Remove `workdir` and disconnect; a device that is gone is not an error here."""
        raise NotImplementedError
