from __future__ import annotations

import os
import shlex
import socket
import subprocess
from pathlib import Path

import pytest

from edge_sdk.errors import DeviceError, UsageError
from targets.transport.ssh import SshOptions, SshTransport, classify_ssh_failure, parse_ssh_url, remote_command


def test_parse_ssh_urls():
    assert str(parse_ssh_url("ssh://pi@raspberrypi.local:2222")) == "ssh://pi@raspberrypi.local:2222"
    address = parse_ssh_url("pi@10.0.0.7")
    assert (address.user, address.host, address.port) == ("pi", "10.0.0.7", None)
    with pytest.raises(UsageError):
        parse_ssh_url("http://pi@host")


def test_host_keys_are_checked_strictly_unless_the_flag_says_otherwise(tmp_path):
    address = parse_ssh_url("ssh://pi@host:22")
    strict = SshOptions(known_hosts=tmp_path / "kh").ssh_args(address)
    assert "StrictHostKeyChecking=yes" in strict and "BatchMode=yes" in strict and f"UserKnownHostsFile={tmp_path / 'kh'}" in strict
    assert any(arg.startswith("ConnectTimeout=") for arg in strict)
    assert "StrictHostKeyChecking=accept-new" in SshOptions(accept_new_host_key=True).ssh_args(address)


def test_remote_command_quotes_every_argument():
    nasty = "/tmp/it's a \"dir\"; rm -rf ~"
    command = remote_command(["python3", "-m", "edge_sdk.runner", nasty, "--target", "a b;c"], workdir=nasty, path_prepends={"PYTHONPATH": nasty + "/r.zip"})
    # What the remote shell will run: the same words, nothing executed on the side.
    result = subprocess.run(["sh", "-c", command.replace("cd ", "printf '%s\\n' ", 1).replace(" && ", "; printf '%s\\n' ", 1)], capture_output=True, text=True,
                            env={name: value for name, value in os.environ.items() if name != "PYTHONPATH"})  # the ${PYTHONPATH:+...} suffix stays empty
    lines = result.stdout.splitlines()
    assert lines[0] == nasty
    assert lines[1] == f"PYTHONPATH={nasty}/r.zip"  # printf gets the assignment as a word here; sh would set it
    words = shlex.split(command)
    assert words[1] == nasty and words[-3:] == [nasty, "--target", "a b;c"]


@pytest.mark.parametrize(("stderr", "expected"), [
    ("Host key verification failed.", "is not in"),
    ("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.", "does not match"),
    ("root@127.0.0.1: Permission denied (publickey).", "authentication"),
    ("ssh: connect to host 10.0.0.9 port 22: Connection refused", "cannot reach"),
    ("Timeout, server 10.0.0.9 not responding.", "lost the connection"),
])
def test_ssh_failures_are_classified(stderr, expected):
    error = classify_ssh_failure(stderr, parse_ssh_url("ssh://root@10.0.0.9"), Path("/k"))
    assert expected in error.message and error.fix


@pytest.mark.ssh
def test_unreachable_host_is_a_device_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = SshTransport(f"ssh://nobody@127.0.0.1:{port}", SshOptions(connect_timeout_s=5))
    with pytest.raises(DeviceError, match="cannot reach"):
        transport.open()


def test_remote_file_names_are_plain():
    transport = SshTransport("ssh://pi@host")
    transport._workdir = "/tmp/x"
    with pytest.raises(UsageError, match="letters, digits"):
        transport.push(Path("/dev/null"), "a b;c")
