"""The edge-sdk demo: a small Keras CNN on scikit-learn's digits, converted to fp32, fp16,
dynamic-range and int8 TFLite and to fp32 and int8 ONNX, each benchmarked against the float Keras model on held-out digits.

Run: `make demo`, or `python examples/digits_demo.py --out demo-output [--epochs 30]`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import edge_sdk
from edge_sdk.bench import BenchSettings
from edge_sdk.progress import Progress
from edge_sdk.report import write_report
from edge_sdk.results import save_results
from edge_sdk.tables import results_table
from targets.runners.base import RunnerOptions

# Raw digits are 8x8 images with values 0..16; the model sees value/16 with a channel axis.
PREPROCESS = {"scale": 1 / 16, "layout": "NHWC"}
MODES = ("fp32", "fp16", "dynamic", "int8")


def write_digits_data(out: Path, seed: int = 0) -> tuple[Path, Path]:
    """Split scikit-learn's digits into train (also the calibration set) and held-out test .npz files."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(images, digits.target, test_size=0.25, random_state=seed, stratify=digits.target)
    train_path, test_path = out / "digits_train.npz", out / "digits_test.npz"
    np.savez(train_path, x=x_train, y=y_train.astype(np.int64))
    np.savez(test_path, x=x_test, y=y_test.astype(np.int64))
    return train_path, test_path


def train_digits_cnn(train_path: Path, model_path: Path, epochs: int, seed: int = 0) -> Path:
    """A small CNN, trained on the train split; the float reference of the demo."""
    import keras

    keras.utils.set_random_seed(seed)
    with np.load(train_path) as data:
        x, y = data["x"][..., None] / 16.0, data["y"]
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, validation_split=0.1)
    model.save(model_path)
    return model_path


def run_demo(out: Path, epochs: int = 30, runs: int = 200, quiet: bool = False) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(enabled=not quiet)
    train_path, test_path = write_digits_data(out)
    model_path = train_digits_cnn(train_path, out / "digits_cnn.keras", epochs)
    artifacts = []
    for mode in MODES:
        artifact = edge_sdk.convert(
            model_path, out / f"digits_cnn_{mode}.tflite", mode=mode, calibration=train_path if mode == "int8" else None,
            validation_data=test_path, preprocess=PREPROCESS, overwrite=True, progress=progress,
        )
        artifacts.append(artifact.path)
    # The same CNN through ONNX Runtime: fp32 (tf2onnx) and static int8 (QDQ), benched in the same table.
    for mode in ("fp32", "int8"):
        artifact = edge_sdk.convert(
            model_path, out / f"digits_cnn_{mode}.onnx", to="onnx", mode=mode, calibration=train_path if mode == "int8" else None,
            validation_data=test_path, preprocess=PREPROCESS, overwrite=True, progress=progress,
        )
        artifacts.append(artifact.path)
    settings = BenchSettings(runs=runs, warmup=20, runner=RunnerOptions(threads=1))
    results = edge_sdk.benchmark(artifacts, test_path, reference=model_path, settings=settings, progress=progress)
    save_results(out / "results.json", results, overwrite=True)
    records = [r.to_dict() for r in results]
    print(results_table(records))
    print(f"results: {out / 'results.json'}")
    for report_name in ("report.html", "report.md"):
        print(f"report: {write_report([out / 'results.json'], out / report_name, overwrite=True)}")
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    run_demo(args.out, args.epochs, args.runs, args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
