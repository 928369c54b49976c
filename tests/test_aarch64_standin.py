"""The aarch64 stand-in (tests/aarch64_fixture.py) behaves like a remote Raspberry Pi reached over real SSH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.aarch64_fixture import LoopbackSshd, build_or_get_rootfs

pytestmark = [pytest.mark.aarch64, pytest.mark.ssh]

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGE_SDK_SHARED_DATA", REPO.parent / "shared" / "data"))
HELLO_WORLD_INT8 = SHARED_DATA / "tflite_micro" / "hello_world" / "hello_world_int8.tflite"

# Runs unchanged on the host and on the device: every int8 input value through the model in one batch.
RUN_INT8_MODEL_SCRIPT = """
import json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path=sys.argv[1])
input_index = interpreter.get_input_details()[0]["index"]
all_int8_values = np.arange(-128, 128, dtype=np.int8).reshape(-1, 1)
interpreter.resize_tensor_input(input_index, list(all_int8_values.shape))
interpreter.allocate_tensors()
interpreter.set_tensor(input_index, all_int8_values)
interpreter.invoke()
output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
print(json.dumps({"dtype": str(output.dtype), "values": output.ravel().tolist()}))
"""

RUN_ONNX_MODEL_SCRIPT = """
import json, sys
import numpy as np
import onnxruntime

session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
image = (np.arange(28 * 28, dtype=np.float32).reshape(1, 1, 28, 28) % 255) / 255
print(json.dumps(session.run(None, {"image": image})[0].ravel().tolist()))
"""


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
    with LoopbackSshd(build_or_get_rootfs(), tmp_path_factory.mktemp("sshd")) as sshd:
        yield sshd


@pytest.fixture
def device_tmp_dir(device: LoopbackSshd) -> Iterator[str]:
    """A fresh folder inside the device, removed afterwards (the rootfs outlives the test session)."""
    made = device.run("mktemp -d /tmp/edge-sdk-test.XXXXXX")
    assert made.returncode == 0, made.stderr
    path = made.stdout.strip()
    yield path
    device.run(f"rm -rf {path}")


def test_ssh_session_runs_on_aarch64(device: LoopbackSshd) -> None:
    command = [
        "ssh", "-i", str(device.client_key), "-o", f"UserKnownHostsFile={device.known_hosts}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-F", "/dev/null", "-p", str(device.port),
        f"{device.user}@127.0.0.1", 'python3 -c "import platform; print(platform.machine())"',
    ]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "aarch64"
    assert device.url == f"ssh://root@127.0.0.1:{device.port}"


def test_device_has_the_runner_runtimes_and_not_tensorflow(device: LoopbackSshd) -> None:
    imports = device.run(
        'python3 -c "import numpy, onnxruntime; from ai_edge_litert.interpreter import Interpreter; '
        'print(onnxruntime.__version__)"'
    )
    assert imports.returncode == 0, imports.stderr
    assert imports.stdout.strip() == "1.32.0"
    # The ARM cpuinfo and CPU lists that enter.sh lays down keep onnxruntime's CPU detection quiet (and alive).
    assert "Error in cpuinfo" not in imports.stderr

    tensorflow = device.run('python3 -c "import tensorflow"')
    assert tensorflow.returncode != 0
    assert "No module named 'tensorflow'" in tensorflow.stderr


@pytest.mark.parametrize("known_host_key", ["another_key", "no_key"])
def test_ssh_refuses_a_host_key_it_does_not_know(device: LoopbackSshd, tmp_path: Path, known_host_key: str) -> None:
    known_hosts = tmp_path / "known_hosts"
    if known_host_key == "another_key":
        other_key = tmp_path / "other_host_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
        key_type, key_base64 = other_key.with_suffix(".pub").read_text().split()[:2]
        known_hosts.write_text(f"[127.0.0.1]:{device.port} {key_type} {key_base64}\n")
    else:
        known_hosts.write_text("")

    refused = device.run("echo reached-the-device", known_hosts=known_hosts)

    assert refused.returncode == 255
    assert "Host key verification failed" in refused.stderr
    assert "reached-the-device" not in refused.stdout


def test_litert_int8_model_on_the_device_matches_the_host(device: LoopbackSshd, device_tmp_dir: str) -> None:
    pytest.importorskip("ai_edge_litert.interpreter", reason="host comparison needs ai-edge-litert==2.3.0")
    if not HELLO_WORLD_INT8.exists():
        pytest.skip(f"shared data {HELLO_WORLD_INT8} is not present (set EDGE_SDK_SHARED_DATA)")
    copied = subprocess.run(
        ["scp", *device.ssh_options(), str(HELLO_WORLD_INT8), f"{device.host_address}:{device_tmp_dir}/model.tflite"],
        check=False, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert copied.returncode == 0, copied.stderr

    on_device = device.run(f"python3 - {device_tmp_dir}/model.tflite", input_text=RUN_INT8_MODEL_SCRIPT)
    on_host = subprocess.run(
        [sys.executable, "-", str(HELLO_WORLD_INT8)], input=RUN_INT8_MODEL_SCRIPT,
        check=False, capture_output=True, text=True, timeout=60,
    )

    assert on_device.returncode == 0, on_device.stderr
    assert on_host.returncode == 0, on_host.stderr
    device_output, host_output = json.loads(on_device.stdout), json.loads(on_host.stdout)
    assert device_output["dtype"] == "int8"
    assert len(device_output["values"]) == 256
    assert len(set(device_output["values"])) > 10  # a real sine curve, not a constant
    assert device_output == host_output


def _write_small_conv_onnx_model(path: Path) -> None:
    """Conv -> Relu -> Flatten -> MatMul with fixed random weights, opset 17: enough to exercise MLAS kernels."""
    onnx = pytest.importorskip("onnx", reason="building the ONNX model needs the onnx package on the host")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    conv_weights = numpy_helper.from_array(rng.standard_normal((8, 1, 3, 3)).astype(np.float32), "conv_weights")
    dense_weights = numpy_helper.from_array(
        (rng.standard_normal((8 * 26 * 26, 10)) * 0.01).astype(np.float32), "dense_weights"
    )
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "conv_weights"], ["conv"]),
            helper.make_node("Relu", ["conv"], ["relu"]),
            helper.make_node("Flatten", ["relu"], ["flat"]),
            helper.make_node("MatMul", ["flat", "dense_weights"], ["logits"]),
        ],
        "small_conv",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        [conv_weights, dense_weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_onnxruntime_session_on_the_device_matches_the_host(
    device: LoopbackSshd, device_tmp_dir: str, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime", reason="host comparison needs onnxruntime==1.32.0")
    model = tmp_path / "small_conv.onnx"
    _write_small_conv_onnx_model(model)
    copied = subprocess.run(
        ["scp", *device.ssh_options(), str(model), f"{device.host_address}:{device_tmp_dir}/small_conv.onnx"],
        check=False, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert copied.returncode == 0, copied.stderr

    on_device = device.run(f"python3 - {device_tmp_dir}/small_conv.onnx", input_text=RUN_ONNX_MODEL_SCRIPT)
    on_host = subprocess.run(
        [sys.executable, "-", str(model)], input=RUN_ONNX_MODEL_SCRIPT,
        check=False, capture_output=True, text=True, timeout=60,
    )

    assert on_device.returncode == 0, on_device.stderr
    assert on_host.returncode == 0, on_host.stderr
    # CPU lists that do not match the host's CPUs make onnxruntime log thread-pinning errors (see enter.sh).
    assert "[E:onnxruntime" not in on_device.stderr
    # ARM NEON and x86 AVX kernels sum in different orders: equal up to float32 rounding, not bit for bit.
    np.testing.assert_allclose(json.loads(on_device.stdout), json.loads(on_host.stdout), rtol=1e-5, atol=1e-6)


def test_extra_pythonpath_reaches_sessions_and_rsync_works(
    device: LoopbackSshd, device_tmp_dir: str, tmp_path: Path
) -> None:
    package = tmp_path / "src" / "standin_probe"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("ANSWER = 42\n")
    destination = f"{device.host_address}:{device_tmp_dir}/src/"
    synced = subprocess.run(
        ["rsync", "-a", "-e", device.ssh_command(), f"{tmp_path / 'src'}/", destination],
        check=False, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert synced.returncode == 0, synced.stderr

    with LoopbackSshd(device.rootfs, tmp_path / "sshd", extra_pythonpath=[f"{device_tmp_dir}/src"]) as with_source:
        probe = with_source.run('python3 -c "import standin_probe; print(standin_probe.ANSWER)"')

    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "42"
