"""A real aarch64 device stand-in for tests: a Debian arm64 userland under qemu-user behind a real sshd.

`build_or_get_rootfs()` runs tools/aarch64/build_rootfs.sh (debootstrap on the first run, then a cached tarball
or the unpacked folder) and returns the rootfs path. `LoopbackSshd` starts a real OpenSSH server on 127.0.0.1
whose only key may run only tools/aarch64/enter.sh, so every session, scp, sftp and rsync included, runs inside
that rootfs: to the code under test it is a remote Raspberry Pi at ssh://root@127.0.0.1:PORT.

    rootfs = build_or_get_rootfs()
    with LoopbackSshd(rootfs, tmp_path) as device:
        subprocess.run(["ssh", *device.ssh_options(), device.host, "uname -m"], check=True)  # prints aarch64
        subprocess.run(["scp", *device.ssh_options(), "model.tflite", f"{device.host}:/tmp/"], check=True)
        subprocess.run(["rsync", "-a", "-e", device.ssh_command(), "src/", f"{device.host}:/tmp/src/"], check=True)

Nothing here is a mock: emulated code is 30-400x slower than native, so use the device for behaviour, never for
timings. This module is imported by tests/conftest.py; it registers no fixtures or markers itself.
"""

from __future__ import annotations

import functools
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import pytest

REPO = Path(__file__).resolve().parents[1]
AARCH64_TOOLS = REPO / "tools" / "aarch64"
BUILD_ROOTFS_SCRIPT = AARCH64_TOOLS / "build_rootfs.sh"
ENTER_SCRIPT = AARCH64_TOOLS / "enter.sh"
SSHD = Path("/usr/sbin/sshd")
SFTP_SERVER_IN_ROOTFS = "/usr/lib/openssh/sftp-server"
# build_rootfs.sh exits with this status when the machine cannot build the stand-in (not root, no binfmt_misc,
# no Debian mirror): the tests skip then. Any other failure is a real one.
EXIT_CANNOT_BUILD = 77
FIRST_BUILD_TIMEOUT_S = 1800
SSHD_START_TIMEOUT_S = 15.0


@functools.cache
def _run_build_script() -> subprocess.CompletedProcess[str]:
    # Cached so that a session builds (or fails to build) once, however many tests ask.
    return subprocess.run(
        ["bash", str(BUILD_ROOTFS_SCRIPT)], check=False, capture_output=True, text=True, timeout=FIRST_BUILD_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


def build_or_get_rootfs() -> Path:
    """Return the aarch64 rootfs, building and caching it first if needed (minutes the first time).

    Skips the calling test when this machine cannot build it (not root, binfmt_misc or the Debian mirror
    unavailable); fails it, with the script's log, on any other error.
    """
    if os.geteuid() != 0:
        pytest.skip("the aarch64 stand-in needs root (debootstrap, chroot, mount and sshd)")
    result = _run_build_script()
    log_lines = result.stderr.strip().splitlines()
    if result.returncode == EXIT_CANNOT_BUILD:
        reason = log_lines[-1] if log_lines else f"{BUILD_ROOTFS_SCRIPT} exited with {EXIT_CANNOT_BUILD}"
        pytest.skip(f"aarch64 stand-in unavailable: {reason}")
    log_tail = "\n".join(log_lines[-30:])
    if result.returncode != 0 or not result.stdout.strip():
        pytest.fail(f"{BUILD_ROOTFS_SCRIPT} failed with exit status {result.returncode}:\n{log_tail}", pytrace=False)
    return Path(result.stdout.strip().splitlines()[-1])


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _generate_ed25519_key(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True, capture_output=True, stdin=subprocess.DEVNULL,
    )


def _public_key_without_comment(public_key_path: Path) -> str:
    key_type, key_base64 = public_key_path.read_text().split()[:2]
    return f"{key_type} {key_base64}"


class LoopbackSshd:
    """A real OpenSSH server on 127.0.0.1 whose sessions run inside the aarch64 rootfs.

    Key-only (one ed25519 client key, restricted to enter.sh), root login, no PAM. Every file it needs (config,
    host key, client key, authorized_keys, known_hosts, log) lives in `work_dir`. Use it as a context manager,
    or call start() and stop(). `extra_pythonpath` lists folders inside the rootfs that sessions put first on
    PYTHONPATH (for instance a source tree copied to /opt/edge-sdk/src).
    """

    user = "root"
    host_address = "127.0.0.1"

    def __init__(self, rootfs: Path, work_dir: Path, *, extra_pythonpath: Sequence[str] = (), local_port_forwarding: bool = False) -> None:
        self.rootfs = Path(rootfs).resolve()
        self.work_dir = Path(work_dir).resolve()
        self.extra_pythonpath = tuple(extra_pythonpath)
        # `ssh -L` to loopback ports only (serving on the device behind a port forward); off unless asked for.
        self.local_port_forwarding = local_port_forwarding
        for path in (self.rootfs, ENTER_SCRIPT, self.work_dir):
            if '"' in str(path) or "\n" in str(path):
                raise ValueError(f"{path}: a path with a double quote or newline cannot go into authorized_keys")
        self.config = self.work_dir / "sshd_config"
        self.host_key = self.work_dir / "ssh_host_ed25519_key"
        self.host_key_pub = self.work_dir / "ssh_host_ed25519_key.pub"
        self.client_key = self.work_dir / "client_ed25519_key"
        self.client_key_pub = self.work_dir / "client_ed25519_key.pub"
        self.authorized_keys = self.work_dir / "authorized_keys"
        self.known_hosts = self.work_dir / "known_hosts"
        self.log_path = self.work_dir / "sshd.log"
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LoopbackSshd is not started: call start() or use it in a with block")
        return self._port

    @property
    def host(self) -> str:
        """The ssh destination, user included: root@127.0.0.1."""
        return f"{self.user}@{self.host_address}"

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@{self.host_address}:{self.port}"

    def ssh_options(self, known_hosts: Path | None = None) -> list[str]:
        """Options for ssh, scp, sftp and rsync -e that reach this server with its key and nothing else.

        Host keys are checked strictly against `known_hosts` (default: the file holding this server's key), and
        the user's ~/.ssh/config, agent and global known_hosts are ignored.
        """
        options = {
            "BatchMode": "yes",
            "IdentityFile": str(self.client_key),
            "IdentitiesOnly": "yes",
            "IdentityAgent": "none",
            "Port": str(self.port),
            "User": self.user,
            "UserKnownHostsFile": str(known_hosts or self.known_hosts),
            "GlobalKnownHostsFile": "/dev/null",
            "StrictHostKeyChecking": "yes",
            "ConnectTimeout": "10",
            "LogLevel": "ERROR",
        }
        return ["-F", "/dev/null"] + [arg for name, value in options.items() for arg in ("-o", f"{name}={value}")]

    def ssh_command(self, known_hosts: Path | None = None) -> str:
        """The ssh command line as one string, for `rsync -e`."""
        return shlex.join(["ssh", *self.ssh_options(known_hosts)])

    def run(self, command: str, *, timeout_s: float = 120, input_text: str | None = None,
            known_hosts: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run a shell command line on the device through ssh; the result is returned, never checked."""
        return subprocess.run(
            ["ssh", *self.ssh_options(known_hosts), self.host_address, command],
            check=False, capture_output=True, text=True, timeout=timeout_s, input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
        )

    def start(self) -> LoopbackSshd:
        """Write keys and config, start sshd on a free loopback port and wait until it accepts connections."""
        if self._process is not None:
            raise RuntimeError("LoopbackSshd is already started")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        # sshd refuses to start without its privilege separation folder, which only systemd creates.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        _generate_ed25519_key(self.host_key, "edge-sdk-aarch64-standin-host")
        _generate_ed25519_key(self.client_key, "edge-sdk-aarch64-standin-client")
        forced_command = shlex.join(["/bin/bash", str(ENTER_SCRIPT), str(self.rootfs)])
        # With port forwarding, also a terminal (`ssh -t`), so that Ctrl-C reaches a server run in the foreground.
        forwarding = 'port-forwarding,permitopen="127.0.0.1:*",pty,' if self.local_port_forwarding else ""
        self.authorized_keys.write_text(
            f'restrict,{forwarding}command="{forced_command}" {_public_key_without_comment(self.client_key_pub)}\n'
        )
        last_error = ""
        for _attempt in range(3):  # another process may take the free port between the probe and sshd's bind
            port = _free_loopback_port()
            self._write_config(port)
            config_check = subprocess.run(
                [str(SSHD), "-t", "-f", str(self.config)], check=False, capture_output=True, text=True
            )
            if config_check.returncode != 0:
                raise RuntimeError(f"sshd rejected {self.config}: {config_check.stderr.strip()}")
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    [str(SSHD), "-D", "-e", "-f", str(self.config)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                )
            if self._wait_until_listening(port):
                self._port = port
                self.known_hosts.write_text(
                    f"[{self.host_address}]:{port} {_public_key_without_comment(self.host_key_pub)}\n"
                )
                return self
            last_error = self.log_path.read_text(errors="replace")[-2000:]
            self.stop()
        raise RuntimeError(f"sshd did not start on 127.0.0.1; its log {self.log_path}:\n{last_error}")

    def stop(self) -> None:
        """Stop sshd by its PID (SIGTERM, then SIGKILL). Sessions still open end with their clients."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=5)

    def __enter__(self) -> LoopbackSshd:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _write_config(self, port: int) -> None:
        lines = [
            f"Port {port}",
            f"ListenAddress {self.host_address}",
            "AddressFamily inet",
            f"HostKey {self.host_key}",
            f"PidFile {self.work_dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            f"AllowUsers {self.user}",
            "UsePAM no",
            # The keys and authorized_keys sit in a pytest temporary folder, not in a 0700 ~/.ssh.
            "StrictModes no",
            "PermitUserEnvironment no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "AllowTcpForwarding local" if self.local_port_forwarding else "AllowTcpForwarding no",
            "AllowAgentForwarding no",
            # Resolved inside the rootfs: with a forced command, sshd hands this path to enter.sh as
            # $SSH_ORIGINAL_COMMAND, which is how scp (SFTP by default since OpenSSH 9) and sftp get there.
            f"Subsystem sftp {SFTP_SERVER_IN_ROOTFS}",
            "LogLevel VERBOSE",
        ]
        if self.extra_pythonpath:
            lines.append(f"SetEnv EDGE_SDK_AARCH64_PYTHONPATH={':'.join(self.extra_pythonpath)}")
        self.config.write_text("\n".join(lines) + "\n")

    def _wait_until_listening(self, port: int) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + SSHD_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host_address, port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.05)
        return False
