"""Low-rank factorization of Dense layers by truncated SVD, the rank chosen by retained energy, then a short
fine-tune and TFLite fp32.

Run: `python examples/compression/low_rank.py --out out/low_rank [--epochs 10 --energy 0.9]`
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root holds `examples` and `targets`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.compression import common  # noqa: E402


def run(out: Path, epochs: int = 10, energy: float = 0.9) -> dict:
    import tf_keras

    from edge_sdk.compression import factorize_dense_layers

    train_path, test_path = common.write_digits_data(out)
    tf_keras.utils.set_random_seed(0)
    x, y = common.load_xy(train_path)
    teacher = common.compile_for_labels(common.build_teacher())
    teacher.fit(x, y, epochs=epochs, batch_size=common.BATCH_SIZE, verbose=0)
    teacher.save(out / "dense.h5")
    factorized, layers = factorize_dense_layers(teacher, energy)
    common.compile_for_labels(factorized, 5e-4).fit(x, y, epochs=max(1, epochs // 3), batch_size=common.BATCH_SIZE, verbose=0)
    factorized.save(out / "low_rank.h5")
    for layer in layers:
        print(f"{layer.name}: rank {layer.rank} of {min(layer.input_dim, layer.units)} keeps {layer.retained_energy:.1%} energy, "
              f"{layer.parameters_before} -> {layer.parameters_after} parameters")
    print(f"parameters {teacher.count_params()} -> {factorized.count_params()}")
    records = common.convert_and_bench(out / "low_rank.h5", out, train_path, test_path, [("tflite", "fp32")])
    common.print_figures({"parameters_before": teacher.count_params(), "parameters_after": factorized.count_params(),
                          "factorized_layers": sum(1 for layer in layers if layer.factorized), "artifacts_ok": sum(r["status"] == "ok" for r in records)})
    return {"records": records, "layers": [layer.to_dict() for layer in layers], "parameters": (teacher.count_params(), factorized.count_params())}


SMOKE = {"epochs": 2, "energy": 0.8}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/low_rank"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--energy", type=float, default=0.9)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, the same code (tests/examples run it)")
    args = parser.parse_args(argv)
    run(args.out, **(SMOKE if args.smoke else {"epochs": args.epochs, "energy": args.energy}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
