"""`edge-sdk serve` on the aarch64 stand-in (a Debian arm64 userland under qemu-user behind a real sshd), reached
through an ssh port forward, exactly as the README documents for a Raspberry Pi. Behaviour only: emulated timings
are not speed figures."""

from __future__ import annotations

import re
import shlex
import site
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.aarch64_fixture import LoopbackSshd, _free_loopback_port, build_or_get_rootfs
from tests.conftest import REPO
from tests.serve.conftest import Client

pytestmark = [pytest.mark.aarch64, pytest.mark.ssh, pytest.mark.slow]
# The `serve` extra's pure-Python packages, copied from this venv (pip would fetch the same wheels on a Pi).
SERVE_PACKAGES = ("starlette", "uvicorn", "h11", "anyio", "click", "prometheus_client", "idna")
START_TIMEOUT_S = 600  # imports under emulation are slow


def _site_packages() -> Path:
    for folder in site.getsitepackages():
        if (Path(folder) / "starlette").is_dir():
            return Path(folder)
    pytest.skip("not run here: the serve extra (starlette) is not installed")


def test_serve_on_the_standin_through_a_port_forward(digits_artifacts, digits_inputs, run_outputs, tmp_path):
    packages = _site_packages()
    with LoopbackSshd(build_or_get_rootfs(), tmp_path / "sshd", local_port_forwarding=True) as device:
        folder = device.run("mktemp -d /tmp/edge-sdk-serve.XXXXXX").stdout.strip()
        assert folder.startswith("/tmp/edge-sdk-serve."), folder
        try:
            copies = [
                ([REPO / "edge_sdk", REPO / "targets", REPO / "converters"], f"{folder}/src/"),  # what `pip install edge-sdk` ships
                ([packages / name for name in SERVE_PACKAGES], f"{folder}/deps/"),
                ([digits_artifacts["int8"], Path(f"{digits_artifacts['int8']}.manifest.json")], f"{folder}/"),
            ]
            for sources, destination in copies:
                synced = subprocess.run(["rsync", "-a", "--exclude", "__pycache__", "-e", device.ssh_command(), *map(str, sources), f"{device.host_address}:{destination}"],
                                        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
                assert synced.returncode == 0, synced.stderr
            remote_port, local_port = _free_loopback_port(), _free_loopback_port()
            model = f"{folder}/{digits_artifacts['int8'].name}"
            # The documented command: serve on the device's loopback in the foreground of a terminal, reach it
            # through `ssh -L`, stop it with Ctrl-C.
            # `exec`: the server replaces the remote shell, so Ctrl-C reaches it alone (a non-interactive dash dies of it).
            serve = (f"cd {shlex.quote(folder)} && exec env PYTHONPATH={folder}/src:{folder}/deps:$PYTHONPATH python3 -m edge_sdk.cli serve "
                     f"{shlex.quote(model)} --port {remote_port} --workers 2")
            process = subprocess.Popen(["ssh", "-tt", *device.ssh_options(), "-L", f"{local_port}:127.0.0.1:{remote_port}", device.host_address, serve],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.PIPE)
            log: list[str] = []
            threading.Thread(target=lambda: log.extend(line.decode(errors="replace") for line in iter(process.stdout.readline, b"")), daemon=True).start()
            deadline = time.monotonic() + START_TIMEOUT_S
            while not re.search(r"listening on http://127\.0\.0\.1:\d+", "".join(log)):
                assert process.poll() is None, "".join(log)
                assert time.monotonic() < deadline, "".join(log)
                time.sleep(0.5)
            client = Client(local_port)
            status, metadata = client.get_json("/v2/models/digits_int8")
            assert status == 200 and metadata["platform"] == "edge-sdk_litert", metadata
            name = metadata["inputs"][0]["name"]
            status, outputs = client.infer("digits_int8", {name: digits_inputs[1]})
            assert status == 200, outputs
            served = next(iter(outputs.values()))
            # ARM and x86 int8 kernels agree here to one output quantization step at most.
            step = float(np.min(np.diff(np.unique(run_outputs["int8"]))))
            np.testing.assert_allclose(served, run_outputs["int8"], atol=step * 1.01)
            assert np.array_equal(served.argmax(1), run_outputs["int8"].argmax(1))
            status, _, metrics = client.request("GET", "/metrics")
            assert status == 200 and b'edge_sdk_requests_total{model="digits_int8",status="200"} 1.0' in metrics
            client.close()
            process.stdin.write(b"\x03")  # Ctrl-C in the terminal: SIGINT drains the server like SIGTERM
            process.stdin.flush()
            assert process.wait(120) == 0, "".join(log)
            assert "drained: answered 1 inference requests" in "".join(log)
            arch = device.run("uname -m")
            assert arch.stdout.strip() == "aarch64"
        finally:
            device.run(f"rm -rf {shlex.quote(folder)}")
