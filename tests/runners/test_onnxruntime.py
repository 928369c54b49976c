import numpy as np
import pytest

from edge_sdk.errors import UsageError
from targets.runners import runner_for
from targets.runners.base import RunnerOptions
from targets.runners.onnxruntime import OnnxRuntimeRunner, choose_providers
from tests.conftest import shared


@pytest.fixture(scope="module")
def zoo_fp32(tmp_path_factory):
    import edge_sdk

    out = tmp_path_factory.mktemp("zoo") / "zoo.onnx"
    return edge_sdk.convert(shared("onnx_zoo_mnist/model.onnx"), out, to="onnx", preprocess={"scale": 1 / 255, "layout": "NCHW"}).path


def test_providers_fall_back_to_cpu_and_name_the_missing_ones():
    chosen, missing = choose_providers(["cuda", "CPU"], ["CPUExecutionProvider"])
    assert chosen == ["CPUExecutionProvider"] and missing == ["CUDAExecutionProvider"]
    assert choose_providers([], ["CPUExecutionProvider"]) == (["CPUExecutionProvider"], [])


def test_runner_runs_times_and_reports_session_creation(zoo_fp32):
    x = np.random.default_rng(0).random((3, 1, 28, 28)).astype(np.float32)
    with pytest.warns(UserWarning, match="no TensorrtExecutionProvider"):
        runner = OnnxRuntimeRunner(zoo_fp32, RunnerOptions(threads=1, providers=["tensorrt"], graph_optimization="basic"))
        runner.activate()
    runner.deactivate()
    with runner_for(zoo_fp32, RunnerOptions(threads=1)) as runner:
        assert isinstance(runner, OnnxRuntimeRunner) and runner.inputs[0].shape == (1, 1, 28, 28)
        out = runner.infer({"Input3": x})[runner.outputs[0].name]
        assert out.shape == (3, 10) and runner.inference_time_s > 0 and 0 < runner.load_time_s < 5
        assert runner.describe()["providers"] == ["CPUExecutionProvider"]
    with pytest.raises(UsageError, match="--graph-optimization"):
        OnnxRuntimeRunner(zoo_fp32, RunnerOptions(graph_optimization="max")).activate()
