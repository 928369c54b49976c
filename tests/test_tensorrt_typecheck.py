"""The TensorRT modules type-check against tensorrt-stubs, and a misspelled TensorRT call makes mypy fail."""

import shutil
import subprocess
import sys

from tests.conftest import REPO

TOOL = REPO / "tools" / "typecheck_tensorrt.py"


def _mypy(*files):
    return subprocess.run([sys.executable, TOOL, *map(str, files)], capture_output=True, text=True, cwd=REPO, timeout=600)


def test_tensorrt_modules_pass_mypy_against_the_stubs():
    result = _mypy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 5 source files" in result.stdout


def test_a_misspelled_tensorrt_call_fails_mypy(tmp_path):
    # A copy inside the repo's package layout, so its imports resolve exactly like the original's.
    package = tmp_path / "targets"
    shutil.copytree(REPO / "targets", package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "edge_sdk", tmp_path / "edge_sdk", ignore=shutil.ignore_patterns("__pycache__"))
    build = package / "tensorrt_build.py"
    source = build.read_text()
    typo = source.replace("builder.build_serialized_network(network, config)", "builder.build_serialised_network(network, config)")
    assert typo != source
    build.write_text(typo)
    result = subprocess.run([sys.executable, TOOL, str(build)], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode != 0
    assert 'has no attribute "build_serialised_network"' in result.stdout


def test_a_wrong_argument_type_to_tensorrt_fails_mypy(tmp_path):
    shutil.copytree(REPO / "targets", tmp_path / "targets", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "edge_sdk", tmp_path / "edge_sdk", ignore=shutil.ignore_patterns("__pycache__"))
    runner = tmp_path / "targets" / "runners" / "tensorrt.py"
    runner.write_text(runner.read_text().replace("engine.get_tensor_name(index)", "engine.get_tensor_name(str(index))"))
    result = subprocess.run([sys.executable, TOOL, str(runner)], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode != 0 and "get_tensor_name" in result.stdout
