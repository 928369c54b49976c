"""Quantization-aware training with tfmot `quantize_model`, converted to full int8 TFLite from the ranges it
learned: no calibration data is passed to the converter.

Run: `python examples/compression/qat.py --out out/qat [--epochs 10]`
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root holds `examples` and `targets`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.compression import common  # noqa: E402


def quantization_aware_finetune(model_path: Path, train_path: Path, qat_path: Path, epochs: int, seed: int = 0) -> Path:
    """Wrap the float model with fake-quant ops (tfmot), fine-tune it on the labels, save the QAT .h5."""
    import tensorflow_model_optimization as tfmot
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    x, y = common.load_xy(train_path)
    qat = tfmot.quantization.keras.quantize_model(common.load_tf_keras(model_path))
    common.compile_for_labels(qat, 1e-3)
    qat.fit(x, y, epochs=epochs, batch_size=common.BATCH_SIZE, verbose=0)
    qat.save(qat_path)
    return qat_path


def run(out: Path, epochs: int = 10) -> dict:
    import tf_keras

    train_path, test_path = common.write_digits_data(out)
    tf_keras.utils.set_random_seed(0)
    x, y = common.load_xy(train_path)
    student = common.compile_for_labels(common.build_student())
    student.fit(x, y, epochs=epochs, batch_size=common.BATCH_SIZE, verbose=0)
    student.save(out / "student.h5")
    qat_path = quantization_aware_finetune(out / "student.h5", train_path, out / "student_qat.h5", max(1, epochs // 2))
    # calibrate=False: the int8 conversion uses the QAT model's learned ranges.
    records = common.convert_and_bench(qat_path, out, train_path, test_path, [("tflite", "int8")], calibrate=False)
    from edge_sdk.artifact import read_manifest

    manifest = read_manifest(out / "student_qat_int8.tflite")
    assert manifest is not None  # the converter wrote it
    print(f"QAT int8: calibration {manifest.calibration}, ranges {manifest.quantization_ranges}")
    common.print_figures({"calibration": manifest.calibration, "quantization_ranges": manifest.quantization_ranges,
                          "int8_top1_agreement": records[0]["reference"]["fidelity"]["top1_agreement"]})
    return {"records": records, "manifest": manifest.to_dict()}


SMOKE = {"epochs": 2}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/qat"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, the same code (tests/examples run it)")
    args = parser.parse_args(argv)
    run(args.out, **(SMOKE if args.smoke else {"epochs": args.epochs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
