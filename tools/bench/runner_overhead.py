"""Our own overhead, measured side by side in one run (these machines are noisy), each figure beside its goal.

1. Conversion: `edge_sdk.convert(..., mode="int8")` (load, calibrate, convert, check weights, validate, manifest)
   against a bare `TFLiteConverter.from_keras_model` int8 call on the same Keras CNN (trained here on
   scikit-learn's digits) and the same number of calibration samples, alternated. Goal: <= 1.2x.
2. Latency: the p50 the SDK reports (`edge_sdk.bench.time_runs`, the LiteRT runner timing the runtime call alone,
   summarised by `edge_sdk.metrics.latency_stats`, as `edge-sdk bench` does) against a bare `interpreter.invoke()`
   loop on the same model and input, alternated in blocks. Goal: <= 1.02x. The model is the MNIST LSTM of
   ../shared/data when present (long enough to time well), else the int8 digits CNN converted in step 1.

Every figure is printed as `name: value` (ratios with `goal <= X: met | not met`); the exit status is 0 whether
the goals are met or not (the figures are for a person to read; they are too noisy here to gate on).

Run: `make bench` or `python tools/bench/runner_overhead.py [--rounds 2000 --repeats 3]`.
`--smoke` runs the same code with tiny sizes (one epoch, 32 calibration samples, one repeat, 200 rounds):
tests/tools/test_bench_smoke.py runs it so the script cannot rot.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from examples.compression.common import PREPROCESS, write_digits_data  # noqa: E402

SHARED_DATA = Path(os.environ.get("EDGE_SDK_SHARED_DATA", REPO.parent / "shared" / "data"))
LSTM = SHARED_DATA / "tflite_micro" / "mnist_lstm" / "trained_lstm_int8.tflite"
MNIST = SHARED_DATA / "mnist" / "mnist_test.npz"
LATENCY_GOAL, CONVERSION_GOAL = 1.02, 1.2
FULL = {"rounds": 2000, "repeats": 3, "epochs": 3, "calibration_samples": 300}
SMOKE = {"rounds": 200, "repeats": 1, "epochs": 1, "calibration_samples": 32}


def figure(name: str, value: float, goal: float | None = None) -> None:
    """One printed figure; a ratio carries its goal beside it."""
    verdict = "" if goal is None else f"   goal <= {goal:g}: {'met' if value <= goal else 'not met'}"
    print(f"  {name}: {value:.4f}{verdict}")


def train_digits_cnn(train_path: Path, model_path: Path, epochs: int) -> Path:
    """A small Keras 3 CNN on the digits (the model both converters get)."""
    import keras

    keras.utils.set_random_seed(0)
    with np.load(train_path, allow_pickle=False) as data:
        x, y = data["x"][..., None] * PREPROCESS["scale"], data["y"]
    model = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(16, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10),
    ])
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    model.save(model_path)
    return model_path


def conversion_overhead(out: Path, repeats: int, epochs: int, calibration_samples: int) -> Path:
    """Alternate bare and SDK int8 conversions; print both medians and their ratio. Returns the SDK's artifact."""
    import keras
    import tensorflow as tf

    import edge_sdk

    train_path, test_path = write_digits_data(out)
    model_path = train_digits_cnn(train_path, out / "cnn.keras", epochs)
    with np.load(train_path, allow_pickle=False) as data:
        calibration = (data["x"][:calibration_samples, ..., None] * PREPROCESS["scale"]).astype(np.float32)

    def bare() -> None:
        model = keras.models.load_model(model_path, compile=False)
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        (out / "bare.tflite").write_bytes(converter.convert())

    def ours() -> None:
        edge_sdk.convert(model_path, out / "ours.tflite", mode="int8", calibration=train_path, calibration_samples=calibration_samples,
                         validation_data=test_path, preprocess=PREPROCESS, overwrite=True)

    bare()  # the first call pays TensorFlow's one-time start-up for both
    bare_s: list[float] = []
    ours_s: list[float] = []
    for _ in range(repeats):
        for function, times in ((bare, bare_s), (ours, ours_s)):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
    print(f"int8 conversion of the digits CNN, {calibration_samples} calibration samples, {repeats} alternated repeat(s)")
    figure("bare_converter_s", statistics.median(bare_s))
    figure("edge_sdk_convert_s", statistics.median(ours_s))
    figure("convert_time_ratio", statistics.median(ours_s) / statistics.median(bare_s), CONVERSION_GOAL)
    return out / "ours.tflite"


def latency_overhead(model: Path, data: Path, preprocess: dict, rounds: int, block: int = 50) -> None:
    """Alternate blocks of bare invoke() calls and of the SDK's timed runs on the same input; print both p50s."""
    from ai_edge_litert.interpreter import Interpreter

    from edge_sdk import metrics
    from edge_sdk.bench import BenchSettings, time_runs
    from edge_sdk.data import Dataset, PreprocessSpec
    from edge_sdk.progress import Progress
    from targets.runners.base import RunnerOptions
    from targets.runners.litert import LiteRTRunner

    dataset = Dataset(data, PreprocessSpec.from_dict(preprocess))
    sample = next(iter(next(iter(dataset.samples([0]))).inputs.values()))
    bare = Interpreter(model_path=str(model), num_threads=1)
    bare.allocate_tensors()
    detail = bare.get_input_details()[0]
    scale, zero_point = detail["quantization"]
    value = np.clip(np.round(sample / scale) + zero_point, -128, 127) if scale else sample
    bare.set_tensor(detail["index"], value.astype(detail["dtype"]).reshape(detail["shape"]))
    options = RunnerOptions(threads=1)
    settings = BenchSettings(runs=block, warmup=0, runner=options)
    bare_ms: list[float] = []
    sdk_ms: list[float] = []
    with LiteRTRunner(model, options) as runner:
        time_runs(runner, dataset, BenchSettings(runs=1, warmup=50, runner=options), Progress(enabled=False), model.name)  # warm up both
        for _ in range(50):
            bare.invoke()
        for _ in range(max(1, rounds // block)):
            for _ in range(block):
                start = time.perf_counter()
                bare.invoke()
                bare_ms.append((time.perf_counter() - start) * 1e3)
            sdk_ms += time_runs(runner, dataset, settings, Progress(enabled=False), model.name)
    bare_p50, sdk_p50 = metrics.latency_stats(bare_ms)["p50_ms"], metrics.latency_stats(sdk_ms)["p50_ms"]
    print(f"latency of {model.name}: {len(sdk_ms)} SDK runs and {len(bare_ms)} bare invoke() calls, alternated in blocks of {block}, 1 thread")
    figure("bare_invoke_p50_ms", bare_p50)
    figure("sdk_reported_p50_ms", sdk_p50)
    figure("sdk_p50_ratio", sdk_p50 / bare_p50, LATENCY_GOAL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, the same code: for tests")
    parser.add_argument("--rounds", type=int, help=f"latency rounds per side (default {FULL['rounds']})")
    parser.add_argument("--repeats", type=int, help=f"conversions per side (default {FULL['repeats']})")
    parser.add_argument("--model", type=Path, help="a .tflite for the latency figures (default: the MNIST LSTM, else the converted CNN)")
    args = parser.parse_args(argv)
    sizes = {**(SMOKE if args.smoke else FULL), **{k: v for k, v in (("rounds", args.rounds), ("repeats", args.repeats)) if v is not None}}
    with tempfile.TemporaryDirectory(prefix="edge-sdk-bench-") as folder:
        converted = conversion_overhead(Path(folder), sizes["repeats"], sizes["epochs"], sizes["calibration_samples"])
        if args.model is None and LSTM.exists() and MNIST.exists():
            model, data, preprocess = LSTM, MNIST, {"scale": 1 / 255}
        else:
            model, data, preprocess = args.model or converted, Path(folder) / "digits_test.npz", PREPROCESS
        latency_overhead(model, data, preprocess, sizes["rounds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
