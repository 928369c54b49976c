"""Our own overhead, measured side by side in one process (these machines are noisy).

1. Runner latency: our LiteRT runner's measured latency (the runtime call alone), and the wall
   time of a whole `runner.infer()` (quantize, copy in, invoke, copy out, dequantize), against a
   bare `interpreter.invoke()` loop on the same model, interleaved run by run. Target: the
   measured-latency median within 1.02x of the bare median.
2. Conversion: `edge_sdk.convert(..., mode="int8")` (load, calibrate, convert, check weights,
   validate, manifest) against a bare `TFLiteConverter.from_keras_model` int8 call on the same
   model and calibration data, alternated. Target: <= 1.2x.

Run: `make bench` or `python tools/bench/runner_overhead.py [--rounds 2000]`.
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
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def runner_overhead(model: Path, sample: np.ndarray, rounds: int) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from targets.runners.base import RunnerOptions
    from targets.runners.litert import LiteRTRunner

    bare = Interpreter(model_path=str(model), num_threads=1)
    bare.allocate_tensors()
    detail = bare.get_input_details()[0]
    scale, zero_point = detail["quantization"]
    bare.set_tensor(detail["index"], np.clip(np.round(sample / scale) + zero_point, -128, 127).astype(detail["dtype"]) if scale else sample)
    bare_ms, measured_ms, wall_ms = [], [], []
    with LiteRTRunner(model, RunnerOptions(threads=1)) as runner:
        inputs = {runner.inputs[0].name: sample}
        for _ in range(50):  # warm up both
            bare.invoke()
            runner.infer(inputs)
        for _ in range(rounds):
            start = time.perf_counter()
            bare.invoke()
            bare_ms.append((time.perf_counter() - start) * 1e3)
            start = time.perf_counter()
            runner.infer(inputs)
            wall_ms.append((time.perf_counter() - start) * 1e3)
            measured_ms.append(runner.inference_time_s * 1e3)
    bare_median = statistics.median(bare_ms)
    print(f"model: {model.name}, {rounds} interleaved rounds, 1 thread")
    print(f"  bare interpreter.invoke() median     {bare_median:.4f} ms")
    print(f"  runner measured latency median       {statistics.median(measured_ms):.4f} ms   ratio {statistics.median(measured_ms) / bare_median:.3f} (target <= 1.02)")
    print(f"  runner.infer() wall time median      {statistics.median(wall_ms):.4f} ms   ratio {statistics.median(wall_ms) / bare_median:.3f} (quantize + copies + dequantize included)")


def conversion_overhead(repeats: int) -> None:
    import keras
    import tensorflow as tf

    import edge_sdk
    from examples.digits_demo import PREPROCESS, train_digits_cnn, write_digits_data

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        train_path, _ = write_digits_data(out)
        model_path = train_digits_cnn(train_path, out / "cnn.keras", epochs=3)
        with np.load(train_path, allow_pickle=False) as data:
            calibration = (data["x"][:300, ..., None] / 16.0).astype(np.float32)

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
            edge_sdk.convert(model_path, out / "ours.tflite", mode="int8", calibration=train_path, calibration_samples=300, preprocess=PREPROCESS, overwrite=True)

        bare()  # first call pays TensorFlow's one-time start-up for both
        bare_s, ours_s = [], []
        for _ in range(repeats):
            for function, times in ((bare, bare_s), (ours, ours_s)):
                start = time.perf_counter()
                function()
                times.append(time.perf_counter() - start)
    print(f"int8 conversion of the digits CNN, 300 calibration samples, {repeats} alternated repeats")
    print(f"  bare TFLiteConverter median          {statistics.median(bare_s):.3f} s")
    print(f"  edge_sdk.convert median              {statistics.median(ours_s):.3f} s   ratio {statistics.median(ours_s) / statistics.median(bare_s):.3f} (target <= 1.2; includes validation on 100 samples)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, default=REPO.parent / "shared" / "data" / "tflite_micro" / "mnist_lstm" / "trained_lstm_int8.tflite")
    args = parser.parse_args()
    with np.load(REPO.parent / "shared" / "data" / "mnist" / "mnist_test.npz", allow_pickle=False) as data:
        sample = (data["x_test"][:1] / 255.0).astype(np.float32)
    runner_overhead(args.model, sample, args.rounds)
    conversion_overhead(args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
