"""`edge-sdk pipeline` with `kind: ssh` targets, end to end against the aarch64 stand-in (a Debian arm64 userland
under qemu-user behind a real sshd, tests/aarch64_fixture.py): the device benches go through bench_on_devices,
land in the same results.json and reports, are cached, and a dead device fails only its own target."""

from __future__ import annotations

import json
import shutil
import socket

import pytest
import yaml

from edge_sdk.errors import DeviceError
from tests.aarch64_fixture import LoopbackSshd, build_or_get_rootfs

pytestmark = [pytest.mark.aarch64, pytest.mark.ssh]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_pipeline_benches_on_the_aarch64_pi_next_to_the_desktop(tmp_path, digits_keras, digits_npz):
    from edge_sdk.pipeline import run_pipeline
    from edge_sdk.results import load_results

    shutil.copyfile(digits_keras, tmp_path / "cnn.keras")
    shutil.copyfile(digits_npz[0], tmp_path / "train.npz")
    shutil.copyfile(digits_npz[1], tmp_path / "test.npz")
    dead_port = _free_port()
    with LoopbackSshd(build_or_get_rootfs(), tmp_path / "sshd") as device:
        ssh = {"kind": "ssh", "profile": "raspberry-pi-4", "ssh_key": str(device.client_key), "known_hosts": str(device.known_hosts)}
        document = {
            "output": "out", "data": {"evaluation": "test.npz", "calibration": "train.npz", "max_samples": 40},
            "preprocess": {"scale": 0.0625, "layout": "NHWC"}, "models": {"cnn": {"path": "cnn.keras"}}, "formats": {"tflite": ["int8"]},
            # Emulation is 30-400x slower than native: few samples and runs; behaviour only, never speed.
            "bench": {"runs": 3, "warmup": 1},
            "targets": {"desktop": {"kind": "desktop"}, "pi": {**ssh, "host": device.url},
                        "gone": {**ssh, "host": "127.0.0.1", "port": dead_port, "user": "root", "timeout_s": 30}},
        }
        config = tmp_path / "edge.yaml"
        config.write_text(yaml.safe_dump(document))

        with pytest.raises(DeviceError) as raised:
            run_pipeline(config)
        message = str(raised.value)
        assert f"target gone (ssh://root@127.0.0.1:{dead_port}): 1 of 1 benches failed" in message and "cannot reach" in message
        assert "target pi" not in message and "results and reports written" in message

        out = tmp_path / "out"
        results = {r["target"]["name"]: r for r in load_results(out / "results.json")["results"]}
        assert set(results) == {"desktop", "pi", "gone"}
        on_pi, here = results["pi"], results["desktop"]
        assert on_pi["status"] == "ok", on_pi["error"]
        assert on_pi["environment"]["architecture"] == "aarch64" and on_pi["target"]["profile"] == "raspberry-pi-4"
        assert on_pi["target"]["host"] == device.url and on_pi["data"]["evaluated_samples"] == 40
        # int8 outputs are exact across x86_64 and aarch64, so every accuracy figure is the same.
        assert on_pi["accuracy"] == here["accuracy"] and on_pi["reference"]["fidelity"] == here["reference"]["fidelity"]
        assert results["gone"]["status"] == "error" and results["gone"]["target"]["profile"] == "raspberry-pi-4"
        rows = {row["target"]: row for row in json.loads((out / "pipeline.json").read_text())["rows"]}
        assert rows["pi"]["status"] == "ok" and rows["pi"]["top1"] == rows["desktop"]["top1"] and rows["gone"]["status"] == "error"
        report = (out / "report.md").read_text()
        assert f"pi @ {device.url}" in report and "gone @ " in report

        # Nothing changed: the desktop and pi benches come from the cache; the failed one is tried again.
        with pytest.raises(DeviceError) as raised_again:
            run_pipeline(config)
    assert "target gone" in str(raised_again.value) and "target pi" not in str(raised_again.value)
    assert len(json.loads((out / "pipeline-cache.json").read_text())["benches"]) == 2
    rerun = {r["target"]["name"]: r for r in load_results(out / "results.json")["results"]}
    # Emulated latencies never repeat to the microsecond: equal timings mean the pi bench was not run again.
    assert rerun["pi"]["timing"] == on_pi["timing"] and rerun["desktop"]["timing"] == here["timing"]
    assert rerun["gone"]["status"] == "error"
