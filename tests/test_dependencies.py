"""Import boundaries (STYLE 11): light modules import no framework; the CLI works with no extras."""

import os
import subprocess
import sys
import venv

import pytest

from tests.conftest import REPO

HEAVY = ("tensorflow", "keras", "tf_keras", "torch", "onnxruntime", "onnx", "tf2onnx", "matplotlib")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(','.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    return set(result.stdout.strip().splitlines()[-1].split(","))


def test_import_edge_sdk_and_the_cli_import_no_framework():
    loaded = _loaded_after("import edge_sdk, edge_sdk.cli, edge_sdk.bench, edge_sdk.data, converters, targets.runners")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_litert_runner_uses_only_numpy_and_the_runtime(digits_artifacts):
    code = (
        "import numpy as np\n"
        "from targets.runners.litert import LiteRTRunner\n"
        f"with LiteRTRunner({str(digits_artifacts['int8'])!r}) as r:\n"
        "    r.infer({r.inputs[0].name: np.zeros(r.inputs[0].shape, np.float32)})\n"
    )
    loaded = _loaded_after(code)
    assert "ai_edge_litert" in loaded
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_serve_uses_only_numpy_the_runtime_and_its_http_stack(digits_artifacts):
    """`edge-sdk serve` loads a model, answers a request and exports metrics without a framework or a converter."""
    code = (
        "import numpy as np\n"
        "from pathlib import Path\n"
        "import uvicorn, edge_sdk.serve.server, edge_sdk.serve.loadtest, edge_sdk.cli  # what serve_artifacts starts\n"
        "from edge_sdk.serve.app import ServerApp\n"
        "from edge_sdk.serve.batching import Job\n"
        "from edge_sdk.serve.metrics import ServerMetrics\n"
        "from edge_sdk.serve.model import ServeOptions\n"
        "from edge_sdk.serve.registry import ModelRegistry\n"
        "from edge_sdk.serve.state import SequenceStore\n"
        "metrics, sequences = ServerMetrics(), SequenceStore(60)\n"
        f"registry = ModelRegistry([(Path({str(digits_artifacts['int8'])!r}), 'm')], ServeOptions(max_batch=4), metrics, sequences)\n"
        "ServerApp(registry, metrics)\n"
        "executor = registry.get('m')\n"
        "spec = executor.model.inputs[0]\n"
        "out = executor.submit(Job({spec.name: np.zeros([1, *spec.shape[1:]], np.float32)}, 1)).result(60)\n"
        "metrics.exposition()\n"
        "registry.close()\n"
    )
    loaded = _loaded_after(code)
    assert {"ai_edge_litert", "starlette", "uvicorn", "prometheus_client"} <= loaded
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
    assert not {name for name in loaded if name == "converters"}


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory):
    """A fresh venv with edge-sdk and numpy only: no extras at all."""
    root = tmp_path_factory.mktemp("bare") / "venv"
    venv.EnvBuilder(with_pip=True).create(root)
    python = root / "bin" / "python"
    constraints = REPO / "requirements" / "constraints.txt"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "-c", constraints, "numpy"], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", str(REPO)], check=True,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return root


@pytest.mark.slow
def test_every_command_help_works_without_extras(bare_venv):
    cli = bare_venv / "bin" / "edge-sdk"
    for command in ([], ["convert"], ["bench"], ["inspect"], ["serve"], ["loadtest"]):
        result = subprocess.run([cli, *command, "-h"], capture_output=True, text=True, cwd="/")
        assert result.returncode == 0, result.stderr
        assert "usage: edge-sdk" in result.stdout


@pytest.mark.slow
def test_missing_runtime_extra_is_named_with_the_install_command(bare_venv, digits_artifacts, digits_keras, digits_npz, tmp_path):
    cli = bare_venv / "bin" / "edge-sdk"
    bench = subprocess.run([cli, "bench", digits_artifacts["int8"], "--data", digits_npz[1], "--runs", "2"], capture_output=True, text=True, cwd=tmp_path)
    assert bench.returncode != 0
    assert "TFLite runtime not installed" in bench.stderr and "pip install 'edge-sdk[litert]'" in bench.stderr
    assert "Traceback" not in bench.stderr
    convert = subprocess.run([cli, "convert", digits_keras, "-o", tmp_path / "m.tflite"], capture_output=True, text=True, cwd=tmp_path)
    assert convert.returncode == 5
    assert "not installed" in convert.stderr and "pip install 'edge-sdk[tf]'" in convert.stderr
    assert not (tmp_path / "m.tflite").exists()
