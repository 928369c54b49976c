"""What the compression examples share: the digits data, a teacher and a student (tf_keras, because
tensorflow-model-optimization 0.8.1 only wraps tf_keras models), and convert + bench through edge_sdk."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Raw digits are 8x8 images with values 0..16; the models see value/16 with a channel axis.
PREPROCESS = {"scale": 1 / 16, "layout": "NHWC"}
BATCH_SIZE = 32


def write_digits_data(out: Path, seed: int = 0) -> tuple[Path, Path]:
    """scikit-learn's digits split into train (also the calibration set) and held-out test .npz files."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    out.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images.astype(np.float32), digits.target, test_size=0.25, random_state=seed, stratify=digits.target
    )
    train_path, test_path = out / "digits_train.npz", out / "digits_test.npz"
    np.savez(train_path, x=x_train, y=y_train.astype(np.int64))
    np.savez(test_path, x=x_test, y=y_test.astype(np.int64))
    return train_path, test_path


def print_figures(figures: dict[str, Any]) -> None:
    """An example's figures, one `name: value` line each: what a reader compares, and what tests/examples check."""
    for name, value in figures.items():
        print(f"{name}: {value:.4f}" if isinstance(value, float) else f"{name}: {value}")


def load_xy(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Model-ready inputs (PREPROCESS applied) and labels."""
    with np.load(path, allow_pickle=False) as data:
        return (data["x"][..., None] / 16.0).astype(np.float32), data["y"]


def build_teacher() -> Any:
    import tf_keras

    return tf_keras.Sequential([
        tf_keras.Input((8, 8, 1)),
        tf_keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        tf_keras.layers.Conv2D(64, 3, activation="relu"),
        tf_keras.layers.MaxPooling2D(),
        tf_keras.layers.Flatten(),
        tf_keras.layers.Dense(256, activation="relu"),
        tf_keras.layers.Dense(10),
    ], name="teacher")


def build_student() -> Any:
    import tf_keras

    return tf_keras.Sequential([
        tf_keras.Input((8, 8, 1)),
        tf_keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        tf_keras.layers.MaxPooling2D(),
        tf_keras.layers.Flatten(),
        tf_keras.layers.Dense(64, activation="relu"),
        tf_keras.layers.Dense(10),
    ], name="student")


def compile_for_labels(model: Any, learning_rate: float = 2e-3) -> Any:
    import tf_keras

    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate), loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def train_teacher(train_path: Path, model_path: Path, epochs: int, seed: int = 0) -> Path:
    """The teacher: a larger CNN trained on the labels, saved as a tf_keras .h5."""
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    x, y = load_xy(train_path)
    model = compile_for_labels(build_teacher())
    model.fit(x, y, epochs=epochs, batch_size=BATCH_SIZE, verbose=0)
    model.save(model_path)
    return model_path


def load_tf_keras(path: Path) -> Any:
    import tf_keras

    return tf_keras.models.load_model(path, compile=False)


def accuracy_of(model: Any, data_path: Path) -> float:
    x, y = load_xy(data_path)
    return float((model.predict(x, verbose=0).argmax(axis=1) == y).mean())


def convert_and_bench(model_path: Path, out: Path, train_path: Path, test_path: Path, targets: list[tuple[str, str]], *, calibrate: bool = True, runs: int = 50, reference: Path | None = None) -> list[dict[str, Any]]:
    """Convert `model_path` to each (format, mode) and bench the artifacts on the test split against the float
    model: the step every compressed model goes through (`edge-sdk convert` + `edge-sdk bench`)."""
    import edge_sdk
    from edge_sdk.bench import BenchSettings
    from edge_sdk.tables import results_table
    from targets.runners.base import RunnerOptions

    artifacts = []
    for fmt, mode in targets:
        needs_calibration = calibrate and mode == "int8"
        artifact = edge_sdk.convert(
            model_path, out / f"{model_path.stem}_{mode}.{fmt}", to=fmt, mode=mode, calibration=train_path if needs_calibration else None,
            validation_data=test_path, preprocess=PREPROCESS, overwrite=True,
        )
        artifacts.append(artifact.path)
    settings = BenchSettings(runs=runs, warmup=5, runner=RunnerOptions(threads=1))
    results = edge_sdk.benchmark(artifacts, test_path, reference=reference or model_path, settings=settings)
    records = [result.to_dict() for result in results]
    print(results_table(records))
    failed = [record for record in records if record["status"] != "ok"]
    if failed:
        raise RuntimeError(f"bench failed: {[record['error'] for record in failed]}")
    return records

