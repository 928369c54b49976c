"""Mutated .onnx protobufs (a small model built here and the ONNX zoo's opset-1 MNIST) through load_onnx.

The cases run in a child process (tests/fuzz/onnx_cases.py): onnx's C++ parser and checker could crash rather
than raise, and a crash must fail this test with the input, not end the test session.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.fuzz.harness import FUZZ_EXAMPLES, HANG_LIMIT_S

pytest.importorskip("onnx")
EXAMPLES = 40


def test_mutated_onnx_models_load_or_raise_an_sdk_error(tmp_path):
    case_file = tmp_path / "case.onnx"
    examples = FUZZ_EXAMPLES or EXAMPLES
    limit_s = 60 + examples * HANG_LIMIT_S / 10
    try:
        result = subprocess.run([sys.executable, "-m", "tests.fuzz.onnx_cases", str(case_file), str(examples)], cwd=REPO,
                                capture_output=True, text=True, timeout=limit_s, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"the ONNX fuzz child did not finish within {limit_s:g} s; the input it hung on is {case_file}")
    if result.returncode < 0:
        pytest.fail(f"onnx intake crashed the process ({signal.Signals(-result.returncode).name}) on the input kept at {case_file}:\n{result.stderr[-3000:]}")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
