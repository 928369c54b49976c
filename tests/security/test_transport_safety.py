"""Remote commands quoted, host keys verified, device work folders private and removed, archives never extracted
outside their folder.

The SSH transport is driven through a stand-in `ssh` (a script that records its argv and runs the remote command
with the local shell, as sshd hands it to the user's shell), so quoting is checked by a real shell without sshd;
tests/test_ssh_e2e.py does the same against a real sshd and an aarch64 device.
"""

from __future__ import annotations

import ast
import shlex
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from targets.transport.local import LocalTransport
from targets.transport.ssh import SshOptions, SshTransport, parse_ssh_url, remote_command
from tests.conftest import REPO
from tests.security.test_no_unsafe_loading import _sources

NASTY = "it's a \"dir\"; touch pwned; $(touch pwned2) `touch pwned3` & x"


@pytest.fixture
def fake_ssh(tmp_path: Path) -> tuple[Path, Path]:
    """(ssh stand-in, log of its argv): it runs its last argument with `sh -c` in tmp_path/cwd."""
    log = tmp_path / "ssh-argv.log"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    script = tmp_path / "fake-ssh"
    script.write_text(f'#!/bin/sh\nprintf "%s\\0" "$@" >> {shlex.quote(str(log))}\nprintf "\\n" >> {shlex.quote(str(log))}\n'
                      f'for last; do :; done\ncd {shlex.quote(str(cwd))} && exec sh -c "$last"\n')
    script.chmod(0o755)
    return script, log


def _argvs(log: Path) -> list[list[str]]:
    return [line.split("\0") for line in log.read_text().split("\0\n") if line] if log.exists() else []


def test_remote_command_round_trips_through_shlex():
    argv = ["python3", "-m", "edge_sdk.runner", f"/tmp/{NASTY}/model.tflite", "--inputs", NASTY, "--flag=a b;c"]
    command = remote_command(argv, workdir=f"/tmp/{NASTY}", path_prepends={"PYTHONPATH": f"/tmp/{NASTY}/r.zip"})
    words = shlex.split(command)
    assert words[:4] == ["cd", f"/tmp/{NASTY}", "&&", f"PYTHONPATH=/tmp/{NASTY}/r.zip${{PYTHONPATH:+:$PYTHONPATH}}"]
    assert words[4:] == argv
    with pytest.raises(Exception, match="environment variable"):
        remote_command(["true"], path_prepends={"X; touch pwned": "v"})


def test_a_hostile_work_folder_and_argv_reach_the_device_intact(fake_ssh, tmp_path):
    script, log = fake_ssh
    parent = tmp_path / NASTY
    parent.mkdir()
    transport = SshTransport("ssh://pi@device:2222", SshOptions(known_hosts=tmp_path / "known_hosts", workdir_parent=str(parent)), ssh=str(script))
    with transport:
        workdir = Path(transport.workdir)
        assert workdir.parent == parent and stat.S_IMODE(workdir.stat().st_mode) == 0o700
        output = transport.run(["printf", "[%s]", NASTY, "a b", "c;d"], timeout_s=30, path_prepends={"EXTRA": NASTY})
        assert output.returncode == 0 and output.stdout == f"[{NASTY}][a b][c;d]"
        assert transport.run(["sh", "-c", 'printf "%s" "$EXTRA"'], timeout_s=30, path_prepends={"EXTRA": NASTY}).stdout == NASTY
    assert not workdir.exists(), "the device work folder was not removed on close"
    assert not list(tmp_path.rglob("pwned*")), "a quoted argument ran as a command"
    argvs = _argvs(log)
    assert len(argvs) == 4  # mktemp, two runs, rm -rf
    for argv in argvs:
        assert argv[-2] == "device" and argv[-1].startswith(("mktemp -d ", "cd ", "rm -rf -- "))
        assert "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv and f"UserKnownHostsFile={tmp_path / 'known_hosts'}" in argv


def test_ssh_argv_verifies_host_keys_unless_explicitly_told():
    address = parse_ssh_url("ssh://pi@host:22")
    default = SshOptions().ssh_args(address)
    assert default[default.index("StrictHostKeyChecking=yes") - 1] == "-o"
    assert not any(arg.endswith(("=no", "=off")) and "HostKey" in arg for arg in default)
    assert "StrictHostKeyChecking=accept-new" in SshOptions(accept_new_host_key=True).ssh_args(address)
    assert not any("UserKnownHostsFile=/dev/null" in arg for arg in SshOptions(accept_new_host_key=True).ssh_args(address))


def test_no_source_turns_host_key_checking_off():
    offenders = []
    for path in [*_sources(), *sorted((REPO / "tools").rglob("*.sh"))]:
        text = path.read_text()
        for needle in ("StrictHostKeyChecking=no", "StrictHostKeyChecking no", "UserKnownHostsFile=/dev/null", '"StrictHostKeyChecking": "no"'):
            if needle in text:
                offenders.append(f"{path.relative_to(REPO)}: {needle}")
        # Only the ssh transport may turn the explicit --accept-new-host-key flag into ssh's option.
        if "StrictHostKeyChecking=accept-new" in text and path.name != "ssh.py":
            offenders.append(f"{path.relative_to(REPO)}: accept-new outside the ssh transport")
    assert not offenders, offenders


def test_local_work_folder_is_private_and_removed_even_after_an_error(tmp_path):
    transport = LocalTransport()
    with pytest.raises(RuntimeError, match="boom"), transport:
        workdir = Path(transport.workdir)
        assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
        transport.push(Path(__file__), "copy.py")
        assert (workdir / "copy.py").exists()
        raise RuntimeError("boom")
    assert not workdir.exists()
    transport.close()  # safe twice


def test_adb_work_folder_uses_mktemp_and_is_removed():
    source = (REPO / "targets" / "transport" / "adb.py").read_text()
    assert "mktemp -d" in source and "rm -rf" in source


def test_the_source_tree_extracts_no_archive_with_python():
    """Archives are read member by member (zipimport of the runner zip, .npz streams, .pt2 checks), never unpacked."""
    extracting = [f"{path.relative_to(REPO)}:{node.lineno}" for path in _sources() for node in ast.walk(ast.parse(path.read_text()))
                  if isinstance(node, ast.Attribute) and node.attr in ("extractall", "extract", "unpack_archive", "_extract_member")]
    assert not extracting, f"archive extraction needs a member-name check (no '..', no absolute path): {extracting}"


def test_the_rootfs_tarball_extraction_refuses_members_outside_its_folder(tmp_path):
    """tools/aarch64/build_rootfs.sh unpacks its cached tarball with `tar -C DIR -xzf`; GNU tar drops a leading '/'
    and refuses '..' members, so a tampered tarball cannot write outside DIR."""
    script = (REPO / "tools" / "aarch64" / "build_rootfs.sh").read_text()
    extract_lines = [line.strip() for line in script.splitlines() if "tar " in line and "-x" in line]
    assert extract_lines and all("-C " in line and "--absolute-names" not in line and " -P" not in line for line in extract_lines)
    tarball = tmp_path / "evil.tar.gz"
    payload = tmp_path / "payload"
    payload.write_text("x")
    with tarfile.open(tarball, "w:gz") as archive:
        for name in ("../escaped-dotdot", f"{tmp_path}/escaped-absolute", "ok/inside"):
            archive.add(payload, arcname=name)
    target = tmp_path / "rootfs"
    target.mkdir()
    result = subprocess.run(["tar", "--numeric-owner", "-C", str(target), "-xzf", str(tarball)], capture_output=True, text=True)
    assert not (tmp_path / "escaped-dotdot").exists()
    assert (target / "ok" / "inside").exists()
    assert (target / str(tmp_path).lstrip("/") / "escaped-absolute").exists()  # the leading '/' was dropped
    assert result.returncode != 0 and "'..'" in result.stderr
