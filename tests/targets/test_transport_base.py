"""targets/transport/base.py owns the interface: every transport honours it exactly and checks names the same way."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from edge_sdk.errors import UsageError
from targets.transport.adb import AdbTransport
from targets.transport.base import Transport, checked_name
from targets.transport.local import LocalTransport
from targets.transport.ssh import SshTransport

TRANSPORTS = [LocalTransport, SshTransport, AdbTransport]
PUBLIC = ["open", "push", "run", "pull", "close", "workdir", "__enter__", "__exit__"]
HOOKS = ["open_impl", "push_impl", "run_impl", "pull_impl", "close_impl"]
BAD_NAMES = ["a b;c", "../escape", "*", "sub/dir", ".", "..", "$(reboot)", ""]


def _instance(cls: type[Transport]) -> Transport:
    # A program that does not exist: a name check that came too late would surface as a DeviceError instead.
    transport = {LocalTransport: lambda: LocalTransport(), SshTransport: lambda: SshTransport("ssh://pi@host", ssh="/nonexistent/ssh", scp="/nonexistent/scp"),
                 AdbTransport: lambda: AdbTransport("adb://SERIAL", adb="/nonexistent/adb")}[cls]()
    transport._workdir = "/nonexistent/edge-sdk.test"
    return transport


@pytest.mark.parametrize("cls", TRANSPORTS)
def test_transports_keep_the_public_interface_of_the_base(cls):
    overridden = [name for name in PUBLIC if name in vars(cls)]
    assert not overridden, f"{cls.__name__} overrides {overridden}: implement the *_impl hooks instead"
    for name in HOOKS:
        assert name in vars(cls), f"{cls.__name__} lacks {name}"
        assert list(inspect.signature(getattr(cls, name)).parameters) == list(inspect.signature(getattr(Transport, name)).parameters), name
    assert list(inspect.signature(cls.run).parameters) == ["self", "argv", "timeout_s", "path_prepends"]


@pytest.mark.parametrize("cls", TRANSPORTS)
@pytest.mark.parametrize("name", BAD_NAMES)
def test_every_transport_refuses_a_bad_file_name_on_push_and_pull(cls, name, tmp_path):
    transport = _instance(cls)
    with pytest.raises(UsageError, match="letters, digits"):
        transport.push(Path(__file__), name)
    with pytest.raises(UsageError, match="letters, digits"):
        transport.pull(name, tmp_path / "pulled")
    assert not (tmp_path / "pulled").exists()


@pytest.mark.parametrize("cls", TRANSPORTS)
def test_every_transport_refuses_a_bad_environment_name(cls):
    with pytest.raises(UsageError, match="environment variable name"):
        _instance(cls).run(["true"], 5, {"A;reboot": "x"})


def test_plain_names_pass_and_the_work_folder_is_needed(tmp_path):
    assert checked_name("model-0.tflite.manifest.json") == "model-0.tflite.manifest.json"
    transport = LocalTransport()
    with pytest.raises(Exception, match="not open"):
        transport.push(Path(__file__), "copy.py")
    with transport:
        remote = transport.push(Path(__file__), "copy.py")
        assert Path(remote) == Path(transport.workdir) / "copy.py"
        assert transport.run(["cat", "copy.py"], 30).stdout == Path(__file__).read_text()
        transport.pull("copy.py", tmp_path / "back.py")
    assert (tmp_path / "back.py").read_text() == Path(__file__).read_text()
