"""Shared fixtures: real data (scikit-learn digits, ../shared/data) and small real models built once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from examples.compression.common import (
    PREPROCESS as DIGITS_PREPROCESS,  # raw digits / 16, NHWC
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGE_SDK_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared data {path} is not present (set EDGE_SDK_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def digits_npz(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """scikit-learn's digits split into train/test .npz files of raw 8x8 images (values 0..16), as the examples do."""
    from examples.compression.common import write_digits_data

    return write_digits_data(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def digits_keras(tmp_path_factory: pytest.TempPathFactory, digits_npz: tuple[Path, Path]) -> Path:
    """A small Keras 3 CNN trained on the digits train split (the float reference)."""
    import keras

    keras.utils.set_random_seed(0)
    with np.load(digits_npz[0]) as data:
        x, y = data["x"][..., None] / 16.0, data["y"]
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("models") / "digits_cnn.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def digits_artifacts(tmp_path_factory: pytest.TempPathFactory, digits_keras: Path, digits_npz: tuple[Path, Path]) -> dict[str, Path]:
    """fp32 and int8 TFLite artifacts of the digits CNN, converted once through the real converter."""
    import edge_sdk

    out = tmp_path_factory.mktemp("artifacts")
    artifacts = {}
    for mode in ("fp32", "int8"):
        artifact = edge_sdk.convert(
            digits_keras, out / f"digits_{mode}.tflite", mode=mode, calibration=digits_npz[0] if mode == "int8" else None,
            validation_data=digits_npz[1], preprocess=DIGITS_PREPROCESS,
        )
        artifacts[mode] = artifact.path
    return artifacts


def edge_sdk_checked(*args: object, check: bool = True, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """`python -m edge_sdk ARGS` in a child process from the repository root; with `check`, a non-zero exit fails
    the test showing the end of stderr."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    result = subprocess.run([sys.executable, "-m", "edge_sdk", *map(str, args)], capture_output=True, text=True, cwd=REPO, env=environment, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"edge-sdk {' '.join(map(str, args))} exited {result.returncode}: {result.stderr[-3000:]}")
    return result
