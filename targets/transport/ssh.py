"""SSH transport through the system `ssh` and `scp` binaries.

Host keys are always checked: against the user's known_hosts, or the file given as `known_hosts`, with
StrictHostKeyChecking=yes; accepting a key never seen before takes `accept_new_host_key`
(StrictHostKeyChecking=accept-new; a *changed* key is still refused). BatchMode=yes means no password or
passphrase prompt can hang a run. Every remote argument is shell-quoted (shlex.quote), since sshd hands the
command line to the remote user's shell.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from edge_sdk.errors import DeviceError, UsageError
from targets.transport.base import RunOutput, Transport, checked_env_names

SSH_FAILED = 255  # ssh's own exit status for a connection-level failure


@dataclass(frozen=True)
class SshAddress:
    user: str | None
    host: str
    port: int | None

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        return f"ssh://{self.destination}" + (f":{self.port}" if self.port else "")


def parse_ssh_url(url: str) -> SshAddress:
    """`ssh://user@host:port`, `ssh://host`, or the scp-like `user@host` -> SshAddress."""
    text = url if "://" in url else f"ssh://{url}"
    parts = urlsplit(text)
    if parts.scheme != "ssh" or not parts.hostname or parts.path not in ("", "/"):
        raise UsageError(f"--host {url!r} is not an ssh address", fix="write ssh://user@host or ssh://user@host:port")
    try:
        port = parts.port
    except ValueError as error:
        raise UsageError(f"--host {url!r} has an invalid port") from error
    return SshAddress(unquote(parts.username) if parts.username else None, parts.hostname, port)


@dataclass(frozen=True)
class SshOptions:
    """How to connect: key, known_hosts file, whether a new host key may be accepted, timeouts."""

    identity_file: Path | None = None
    known_hosts: Path | None = None
    accept_new_host_key: bool = False
    connect_timeout_s: int = 10
    # A dropped device is noticed after about interval x count seconds of silence.
    server_alive_interval_s: int = 5
    server_alive_count: int = 3
    workdir_parent: str = "/tmp"

    def ssh_args(self, address: SshAddress) -> list[str]:
        options = {
            "BatchMode": "yes",
            "StrictHostKeyChecking": "accept-new" if self.accept_new_host_key else "yes",
            "ConnectTimeout": str(self.connect_timeout_s),
            "ServerAliveInterval": str(self.server_alive_interval_s),
            "ServerAliveCountMax": str(self.server_alive_count),
        }
        if self.known_hosts is not None:
            options["UserKnownHostsFile"] = str(self.known_hosts)
        if self.identity_file is not None:
            options["IdentityFile"] = str(self.identity_file)
            options["IdentitiesOnly"] = "yes"
        if address.port is not None:
            options["Port"] = str(address.port)
        if address.user is not None:
            options["User"] = address.user
        return [arg for name, value in options.items() for arg in ("-o", f"{name}={value}")]


def remote_command(argv: list[str], workdir: str | None = None, path_prepends: dict[str, str] | None = None) -> str:
    """One shell command line for the remote shell: `cd WORKDIR && NAME=VALUE${NAME:+:$NAME} argv...`, all quoted."""
    prefix = ""
    for name, value in checked_env_names(path_prepends).items():
        prefix += f"{name}={shlex.quote(value)}${{{name}:+:${name}}} "
    command = prefix + shlex.join(argv)
    return f"cd {shlex.quote(workdir)} && {command}" if workdir else command


def classify_ssh_failure(stderr: str, address: SshAddress, known_hosts: Path | None) -> DeviceError:
    """Turn ssh's exit-255 stderr into an error that says what happened and what to do."""
    text = stderr.strip()
    last = text.splitlines()[-1] if text else "no message"
    known = str(known_hosts) if known_hosts else "~/.ssh/known_hosts"
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key for" in text and "has changed" in text:
        return DeviceError(f"the host key of {address} does not match the one in {known}: refusing to connect ({last})",
                           fix=f"if the device was re-installed, remove its old key: ssh-keygen -R '[{address.host}]:{address.port or 22}' -f {known}")
    if "Host key verification failed" in text or "No ED25519 host key is known" in text or "host key is known" in text:
        return DeviceError(f"the host key of {address} is not in {known} (or does not match it): refusing to connect",
                           fix="check the key, then add it to known_hosts (ssh-keyscan), or pass --accept-new-host-key to trust a first-seen key")
    if "Permission denied" in text or "Too many authentication failures" in text:
        return DeviceError(f"authentication to {address} failed: {last}",
                           fix="pass the right key with --ssh-key, or install yours on the device (ssh-copy-id)")
    if any(marker in text for marker in ("Connection refused", "timed out", "No route to host", "Could not resolve", "Name or service not known", "Network is unreachable")):
        return DeviceError(f"cannot reach {address}: {last}", fix="check the device is on, its address and port, and that sshd runs there")
    if any(marker in text for marker in ("closed by remote host", "Connection reset", "Broken pipe", "not responding", "Connection closed", "lost connection")):
        return DeviceError(f"lost the connection to {address}: {last}", fix="check the device's power and network, then run again")
    return DeviceError(f"ssh to {address} failed: {last}")


class SshTransport(Transport):
    name = "ssh"

    def __init__(self, url: str, options: SshOptions | None = None, ssh: str = "ssh", scp: str = "scp") -> None:
        self.address = parse_ssh_url(url)
        super().__init__(host=str(self.address), default_python="python3")
        self.options = options or SshOptions()
        self._ssh = ssh
        self._scp = scp

    # --- Transport hooks -----------------------------------------------------------------------
    def open_impl(self) -> str:
        template = f"{self.options.workdir_parent.rstrip('/') or ''}/edge-sdk.XXXXXXXX"
        made = self._ssh_run(f"mktemp -d {shlex.quote(template)}", timeout_s=self.options.connect_timeout_s + 30)
        if made.returncode != 0 or not made.stdout.strip():
            raise DeviceError(f"cannot create a work folder on {self.address}: {made.stderr.strip() or made.stdout.strip()}")
        return made.stdout.strip().splitlines()[-1]  # mktemp -d makes it 0700

    def push_impl(self, local: Path, remote_path: str) -> None:
        self._scp_run([str(local), f"{self._scp_host()}:{remote_path}"], f"copy {local} to {self.address}")

    def run_impl(self, argv: list[str], timeout_s: float | None, path_prepends: dict[str, str]) -> RunOutput:
        return self._ssh_run(remote_command(argv, self.workdir, path_prepends), timeout_s)

    def pull_impl(self, remote_path: str, local: Path) -> None:
        self._scp_run([f"{self._scp_host()}:{remote_path}", str(local)], f"copy {Path(remote_path).name} from {self.address}")

    def close_impl(self, workdir: str) -> None:
        try:
            self._ssh_run(f"rm -rf -- {shlex.quote(workdir)}", timeout_s=self.options.connect_timeout_s + 30)
        except DeviceError:
            pass  # the device is gone; its folder goes with its next reboot (it lives in /tmp)

    # --- helpers -------------------------------------------------------------------------------
    def _scp_host(self) -> str:
        host = self.address.host
        return f"[{host}]" if ":" in host else host

    def _ssh_run(self, command: str, timeout_s: float | None) -> RunOutput:
        argv = [self._ssh, *self.options.ssh_args(self.address), self.address.host, command]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as error:
            raise DeviceError(f"{self.address} did not answer within {timeout_s:g} s", fix="raise --timeout, or check the device") from error
        except FileNotFoundError as error:
            raise DeviceError(f"the ssh client {self._ssh!r} is not installed", fix="apt-get install openssh-client") from error
        if result.returncode == SSH_FAILED:
            raise classify_ssh_failure(result.stderr, self.address, self.options.known_hosts)
        return RunOutput(result.returncode, result.stdout, result.stderr)

    def _scp_run(self, paths: list[str], what: str) -> None:
        argv = [self._scp, "-q", *self.options.ssh_args(self.address), *paths]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=self.options.connect_timeout_s + 600, check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as error:
            raise DeviceError(f"{what} timed out") from error
        if result.returncode != 0:
            error = classify_ssh_failure(result.stderr, self.address, self.options.known_hosts)
            if error.message.startswith("ssh to"):
                raise DeviceError(f"cannot {what}: {result.stderr.strip()}")
            raise error

