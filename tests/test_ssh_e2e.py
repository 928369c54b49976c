"""`edge-sdk bench --target raspberry-pi-4 --host ssh://...` end to end against the aarch64 stand-in (a Debian arm64
userland under qemu-user behind a real sshd, tests/aarch64_fixture.py), and each way a device can fail."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.aarch64_fixture import LoopbackSshd, build_or_get_rootfs

pytestmark = [pytest.mark.aarch64, pytest.mark.ssh]

# Emulation is slow (30-400x): few samples and runs; behaviour only, never speed.
FEW = ["--samples", "50", "--runs", "5", "--warmup", "1"]
NASTY = "it's a \"dir\"; touch pwned"


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
    with LoopbackSshd(build_or_get_rootfs(), tmp_path_factory.mktemp("sshd")) as sshd:
        yield sshd


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ssh_flags(device: LoopbackSshd, known_hosts: Path | None = None, key: Path | None = None) -> list[str]:
    return ["--ssh-key", str(key or device.client_key), "--known-hosts", str(known_hosts or device.known_hosts)]


def _local_outputs(artifact: Path, data: Path, samples: int) -> np.ndarray:
    from edge_sdk.api import bench_on_devices
    from edge_sdk.bench import BenchSettings

    result = bench_on_devices([artifact], data, target="desktop", hosts=["local"], settings=BenchSettings(runs=1, warmup=0, max_samples=samples))[0]
    assert result.status == "ok", result.error
    return result.outputs


def test_bench_on_the_aarch64_pi_matches_the_host_int8_outputs(device, digits_artifacts, digits_npz, digits_keras, tmp_path):
    from edge_sdk.cli import main

    started = time.monotonic()
    out = tmp_path / "pi.json"
    code = main(["bench", str(digits_artifacts["int8"]), "--data", str(digits_npz[1]), "--reference", str(digits_keras), "--target", "raspberry-pi-4",
                 "--host", device.url, *_ssh_flags(device), *FEW, "--quiet", "-o", str(out)])
    elapsed = time.monotonic() - started
    assert code == 0
    record = json.loads(out.read_text())["results"][0]
    assert record["status"] == "ok"
    assert record["environment"]["architecture"] == "aarch64"
    assert record["target"] == {**record["target"], "name": "raspberry-pi-4", "transport": "ssh", "host": device.url}
    assert record["settings"]["runtime"]["runtime"] == "litert" and record["settings"]["runner"]["threads"] is None
    assert record["data"]["evaluated_samples"] == 50 and record["accuracy"]["samples"] == 50
    assert record["reference"]["fidelity"]
    print(f"aarch64 bench over ssh: {elapsed:.1f} s")


def test_parallel_hosts_exact_outputs_quoting_and_one_unreachable(device, digits_artifacts, digits_npz, tmp_path):
    from edge_sdk.api import bench_on_devices
    from edge_sdk.bench import BenchSettings
    from edge_sdk.remote import DeviceOptions

    # A local path and a remote folder with spaces, quotes and ';' must survive every ssh/scp command.
    nasty_dir = tmp_path / NASTY
    nasty_dir.mkdir()
    artifact = nasty_dir / "digits int8.tflite"
    artifact.write_bytes(digits_artifacts["int8"].read_bytes())
    Path(str(artifact) + ".manifest.json").write_text(Path(str(digits_artifacts["int8"]) + ".manifest.json").read_text())
    made = device.run(f"mkdir -p {shlex.quote('/tmp/' + NASTY)}")
    assert made.returncode == 0, made.stderr
    unreachable = f"ssh://root@127.0.0.1:{_free_port()}"
    options = DeviceOptions(identity_file=device.client_key, known_hosts=device.known_hosts, workdir_parent="/tmp/" + NASTY, connect_timeout_s=5)

    results = bench_on_devices([artifact], digits_npz[1], target="raspberry-pi-4", hosts=[device.url, unreachable],
                               settings=BenchSettings(runs=3, warmup=1, max_samples=30), device_options=options)

    on_pi, lost = results
    assert on_pi.status == "ok", on_pi.error
    assert on_pi.environment["architecture"] == "aarch64"
    np.testing.assert_array_equal(on_pi.outputs, _local_outputs(artifact, digits_npz[1], 30))
    assert lost.status == "error" and "cannot reach" in lost.error and lost.target["host"] == unreachable
    assert device.run(f"ls -A {shlex.quote('/tmp/' + NASTY)}").stdout.strip() == ""  # work folder removed
    assert device.run("ls /tmp/pwned").returncode != 0


def test_host_key_mismatch_and_auth_failure_are_refused(device, digits_artifacts, digits_npz, tmp_path):
    from edge_sdk.cli import main

    other_key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    wrong_known_hosts = tmp_path / "known_hosts"
    wrong_known_hosts.write_text(f"[127.0.0.1]:{device.port} {' '.join(other_key.with_suffix('.pub').read_text().split()[:2])}\n")
    common = ["bench", str(digits_artifacts["int8"]), "--data", str(digits_npz[1]), "--target", "raspberry-pi-4", "--host", device.url, *FEW, "--quiet"]

    assert main([*common, *_ssh_flags(device, known_hosts=wrong_known_hosts)]) != 0
    unknown_key = main([*common, *_ssh_flags(device, key=other_key)])
    assert unknown_key != 0


def test_error_messages_for_key_mismatch_auth_and_missing_runtime(device, digits_artifacts, digits_npz, tmp_path):
    from edge_sdk.api import bench_on_devices
    from edge_sdk.bench import BenchSettings
    from edge_sdk.remote import DeviceOptions

    other_key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    wrong_known_hosts = tmp_path / "known_hosts"
    wrong_known_hosts.write_text(f"[127.0.0.1]:{device.port} {' '.join(other_key.with_suffix('.pub').read_text().split()[:2])}\n")
    settings = BenchSettings(runs=2, warmup=0, max_samples=5)

    def bench(**options):
        return bench_on_devices([digits_artifacts["int8"]], digits_npz[1], target="raspberry-pi-4", hosts=[device.url], settings=settings,
                                device_options=DeviceOptions(**{"identity_file": device.client_key, "known_hosts": device.known_hosts, **options}))[0]

    mismatch = bench(known_hosts=wrong_known_hosts)
    assert mismatch.status == "error" and "host key" in mismatch.error and "refusing to connect" in mismatch.error
    denied = bench(identity_file=other_key)
    assert denied.status == "error" and "authentication" in denied.error and "--ssh-key" in denied.error

    # A device whose Python cannot see the runtimes (as on a Pi where `pip install edge-sdk[pi]` was never run).
    wrapper = "/tmp/edge-sdk-python-without-runtimes"
    script = '#!/bin/sh\nPYTHONPATH=$(echo "$PYTHONPATH" | sed "s#:*/opt/edge-sdk/site##") exec python3 "$@"\n'
    assert device.run(f"cat > {wrapper} && chmod 755 {wrapper}", input_text=script).returncode == 0
    missing = bench(python=wrapper)
    assert missing.status == "error"
    assert "runtime litert missing on" in missing.error and "numpy not installed" in missing.error and "pip install 'edge-sdk[pi]'" in missing.error


class _DroppingProxy:
    """A TCP proxy to sshd that cuts connection number `drop_at` after `delay_s` and refuses later ones: a device
    that loses power or network in the middle of a run."""

    def __init__(self, target_port: int, drop_at: int, delay_s: float) -> None:
        self.target_port, self.drop_at, self.delay_s = target_port, drop_at, delay_s
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.count = 0
        self.gone = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.count += 1
            if self.gone:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()
            if self.count == self.drop_at:
                threading.Timer(self.delay_s, self._drop, args=(client, upstream)).start()

    def _drop(self, *sockets: socket.socket) -> None:
        self.gone = True
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.server.close()


def test_a_device_that_disappears_mid_run_is_an_error_and_keeps_other_results(device, digits_artifacts, digits_npz, tmp_path):
    from edge_sdk.api import bench_on_devices
    from edge_sdk.bench import BenchSettings
    from edge_sdk.remote import DeviceOptions

    # Connections: 1 mktemp, 2 runner zip, 3 runtime check, 4 model, 5 manifest, 6 inputs, 7 the runner itself.
    proxy = _DroppingProxy(device.port, drop_at=7, delay_s=2.0)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(device.known_hosts.read_text() + device.known_hosts.read_text().replace(f"]:{device.port} ", f"]:{proxy.port} "))
    try:
        results = bench_on_devices([digits_artifacts["int8"]], digits_npz[1], target="raspberry-pi-4",
                                   hosts=[f"ssh://root@127.0.0.1:{proxy.port}", device.url], settings=BenchSettings(runs=2, warmup=0, max_samples=20),
                                   device_options=DeviceOptions(identity_file=device.client_key, known_hosts=known_hosts))
    finally:
        proxy.close()
    lost, kept = results
    assert lost.status == "error" and "lost the connection" in lost.error, lost.error
    assert kept.status == "ok", kept.error


@pytest.fixture(scope="module")
def two_output_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(a .keras model with two outputs: 10 class scores and one probability, its int8 .tflite, data .npz)."""
    import keras

    import edge_sdk

    folder = tmp_path_factory.mktemp("two_outputs")
    keras.utils.set_random_seed(3)
    image = keras.Input(shape=(8, 8, 1), name="image")
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(image))
    model = keras.Model(image, [keras.layers.Dense(10, activation="softmax", name="digit")(hidden), keras.layers.Dense(1, activation="sigmoid", name="score")(hidden)])
    model.save(folder / "two.keras")
    rng = np.random.default_rng(4)
    np.savez(folder / "data.npz", x=rng.random((40, 8, 8, 1)).astype(np.float32), y=rng.integers(0, 10, 40))
    artifact = edge_sdk.convert(folder / "two.keras", folder / "two.tflite", to="tflite", mode="int8", calibration=folder / "data.npz").path
    return folder / "two.keras", artifact, folder / "data.npz"


def test_a_remote_bench_compares_every_output_as_a_local_bench_does(device, two_output_model):
    import edge_sdk
    from edge_sdk.api import bench_on_devices
    from edge_sdk.bench import BenchSettings
    from edge_sdk.remote import DeviceOptions

    keras_model, artifact, data = two_output_model
    settings = dict(runs=2, warmup=0, max_samples=30)
    local = edge_sdk.benchmark([artifact], data, reference=keras_model, settings=BenchSettings(**settings, isolate=False))[0]
    options = DeviceOptions(identity_file=device.client_key, known_hosts=device.known_hosts)
    remote = bench_on_devices([artifact], data, target="raspberry-pi-4", hosts=[device.url], reference=keras_model,
                              settings=BenchSettings(**settings), device_options=options)[0]
    assert local.status == "ok" and remote.status == "ok", (local.error, remote.error)
    assert remote.environment["architecture"] == "aarch64"
    local_outputs, remote_outputs = local.reference["outputs"], remote.reference["outputs"]
    assert set(remote_outputs) == set(local_outputs) and len(remote_outputs) == 2  # both outputs, not only the primary one
    assert {record["kind"] for record in remote_outputs.values()} == {"class_scores", "values"}
    # int8 kernels give the same integers on aarch64 and x86 (float ones may differ in the last bit, which moves an
    # SQNR of 150 dB by 20 dB): the same outputs, so every figure of every output equals the local bench's.
    assert remote_outputs == local_outputs
