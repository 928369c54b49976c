"""NVIDIA's own client of the protocol, `tritonclient[http]` from PyPI, against `edge-sdk serve`: readiness, metadata,
the repository index, inference with its default binary tensors (sync and 8 concurrent async requests), sequences
and errors. Every output equals `edge-sdk run --outputs` on the same inputs, with batching off and on.

tritonclient 2.73 requires ml-dtypes<=0.5.4 and the project pins 0.6.0, so the client gets its own small venv (built
once and cached, like the slim-runner test's venv), which also keeps the client's packages away from the server's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

import numpy as np
import pytest

from tests.serve.conftest import served

pytestmark = pytest.mark.slow
TRITONCLIENT = "tritonclient[http]==2.73.0"
CACHE = Path(os.environ.get("EDGE_SDK_TEST_CACHE", Path(tempfile.gettempdir()) / "edge-sdk-test-cache"))

CLIENT_SCRIPT = r"""
import json, sys
import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

url, model, inputs_path, out_path = sys.argv[1:5]
x = np.load(inputs_path)["x"]
report = {}
client = httpclient.InferenceServerClient(url, concurrency=8)
report["live"] = client.is_server_live()
report["ready"] = client.is_server_ready()
report["model_ready"] = client.is_model_ready(model)
report["metadata"] = client.get_model_metadata(model)
report["index"] = client.get_model_repository_index()
name = report["metadata"]["inputs"][0]["name"]

def request(sample):
    tensor = httpclient.InferInput(name, list(sample.shape), "FP32")
    tensor.set_data_from_numpy(sample)  # binary_data=True: the client's default
    return [tensor]

sync = [client.infer(model, request(x[i : i + 1])).as_numpy(report["metadata"]["outputs"][0]["name"])[0] for i in range(len(x))]
handles = [client.async_infer(model, request(x[i : i + 1])) for i in range(len(x))]
concurrent = [h.get_result().as_numpy(report["metadata"]["outputs"][0]["name"])[0] for h in handles]
try:
    client.infer("no_such_model", request(x[:1]))
except InferenceServerException as error:
    report["error"] = str(error)
sequence = []
if len(sys.argv) > 5:
    acc = sys.argv[5]
    for step, value in enumerate([1.0, 2.0, 3.0]):
        tensor = httpclient.InferInput("x", [1, 4], "FP32")
        tensor.set_data_from_numpy(np.full((1, 4), value, np.float32))
        result = client.infer(acc, [tensor], sequence_id=42, sequence_start=step == 0, sequence_end=step == 2)
        sequence.append(float(result.as_numpy("y")[0, 0]))
report["sequence"] = sequence
client.close()
np.savez(out_path, sync=np.stack(sync), concurrent=np.stack(concurrent))
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def triton_python() -> Path:
    """A cached venv with tritonclient[http] only (and numpy); skipped when PyPI cannot be reached."""
    root = CACHE / f"tritonclient-2.73.0-py{sys.version_info.major}.{sys.version_info.minor}"
    python, complete = root / "bin" / "python", root / ".complete"
    if complete.exists():
        return python
    shutil.rmtree(root, ignore_errors=True)  # a build that did not finish
    venv.EnvBuilder(with_pip=True).create(root)
    install = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", TRITONCLIENT, f"numpy=={np.__version__}"],
                             capture_output=True, text=True, timeout=600)
    if install.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"not run here: cannot install {TRITONCLIENT}: {install.stderr[-500:]}")
    complete.write_text(TRITONCLIENT + "\n")
    return python


@pytest.mark.parametrize("batching", [[], ["--max-batch", "8", "--batch-timeout-ms", "5"]], ids=["unbatched", "batched"])
def test_tritonclient_gets_what_edge_sdk_run_gets(batching, triton_python, digits_artifacts, digits_inputs, run_outputs, accumulator_onnx, tmp_path):
    np.savez(tmp_path / "inputs.npz", x=digits_inputs[1])
    (tmp_path / "client.py").write_text(CLIENT_SCRIPT)
    with served(digits_artifacts["int8"], accumulator_onnx, "--state", "total_in:total_out", *batching) as server:
        result = subprocess.run([triton_python, tmp_path / "client.py", server.url.removeprefix("http://"), "digits_int8", tmp_path / "inputs.npz",
                                 tmp_path / "outputs.npz", "accumulator"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert result.returncode == 0, result.stderr + server.log_text()
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["live"] and report["ready"] and report["model_ready"]
    assert report["metadata"]["inputs"][0]["datatype"] == "FP32" and report["metadata"]["inputs"][0]["shape"] == [-1, 8, 8, 1]
    assert {entry["name"] for entry in report["index"]} == {"digits_int8", "accumulator"}
    assert "no model named 'no_such_model'" in report["error"]
    assert report["sequence"] == [1.0, 3.0, 6.0]
    outputs = np.load(tmp_path / "outputs.npz")
    np.testing.assert_array_equal(outputs["sync"], run_outputs["int8"])
    np.testing.assert_array_equal(outputs["concurrent"], run_outputs["int8"])
