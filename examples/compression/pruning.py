"""Magnitude pruning with tensorflow-model-optimization: a schedule that reaches the target sparsity on
short training, `strip_pruning`, then TFLite fp32 and int8. Pruning shows in the gzip size, not the raw size.

Run: `python examples/compression/pruning.py --out out/pruning [--epochs 10 --sparsity 0.75]`
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root holds `examples` and `targets`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.compression import common  # noqa: E402


def prune_model(model_path: Path, train_path: Path, pruned_path: Path, target_sparsity: float, epochs: int, seed: int = 0) -> Path:
    """Fine-tune the model at `model_path` while pruning it to `target_sparsity`, strip the wrappers, save .h5."""
    import math

    import tensorflow_model_optimization as tfmot
    import tf_keras

    from edge_sdk.compression import polynomial_pruning_schedule

    tf_keras.utils.set_random_seed(seed)
    x, y = common.load_xy(train_path)
    total_steps = epochs * math.ceil(len(x) / common.BATCH_SIZE)
    schedule = polynomial_pruning_schedule(target_sparsity, total_steps)
    # Biases and 1-D weights stay dense: prune_low_magnitude only prunes kernels.
    pruned = tfmot.sparsity.keras.prune_low_magnitude(common.load_tf_keras(model_path), pruning_schedule=schedule)
    common.compile_for_labels(pruned, 1e-3)
    pruned.fit(x, y, epochs=epochs, batch_size=common.BATCH_SIZE, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    tfmot.sparsity.keras.strip_pruning(pruned).save(pruned_path)
    return pruned_path


def run(out: Path, epochs: int = 10, target_sparsity: float = 0.75) -> dict:
    import tf_keras

    train_path, test_path = common.write_digits_data(out)
    tf_keras.utils.set_random_seed(0)
    x, y = common.load_xy(train_path)
    dense = common.compile_for_labels(common.build_student())
    dense.fit(x, y, epochs=epochs, batch_size=common.BATCH_SIZE, verbose=0)
    dense.save(out / "student.h5")
    pruned_path = prune_model(out / "student.h5", train_path, out / "student_pruned.h5", target_sparsity, epochs)
    records = common.convert_and_bench(out / "student.h5", out, train_path, test_path, [("tflite", "fp32")])
    records += common.convert_and_bench(pruned_path, out, train_path, test_path, [("tflite", "fp32"), ("tflite", "int8")])
    from edge_sdk.artifact import read_manifest

    manifest = read_manifest(out / "student_pruned_fp32.tflite")
    assert manifest is not None and manifest.weights is not None  # the converter wrote them
    for record in records:
        print(f"{record['artifact']['name']}: {record['artifact']['size_bytes']} bytes, gzip {record['artifact']['gzip_size_bytes']} bytes")
    print(f"weight sparsity of the pruned student: {manifest.weights['sparsity']:.1%}")
    gzip = {record["artifact"]["name"]: record["artifact"]["gzip_size_bytes"] for record in records}
    common.print_figures({"weight_sparsity": manifest.weights["sparsity"], "dense_fp32_gzip_bytes": gzip["student_fp32.tflite"],
                          "pruned_fp32_gzip_bytes": gzip["student_pruned_fp32.tflite"], "pruned_int8_gzip_bytes": gzip["student_pruned_int8.tflite"]})
    return {"records": records, "sparsity": manifest.weights["sparsity"], "pruned_path": pruned_path}


SMOKE = {"epochs": 2, "target_sparsity": 0.75}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/pruning"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--sparsity", type=float, default=0.75)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, the same code (tests/examples run it)")
    args = parser.parse_args(argv)
    run(args.out, **(SMOKE if args.smoke else {"epochs": args.epochs, "target_sparsity": args.sparsity}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
