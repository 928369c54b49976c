"""Knowledge distillation: a small student learns from a larger teacher's softened outputs plus the labels.

Run: `python examples/compression/distillation.py --out out/distillation [--epochs 20]`
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root holds `examples` and `targets`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.compression import common  # noqa: E402


def train_distilled_student(train_path: Path, teacher_path: Path, student_path: Path, epochs: int, temperature: float = 4.0, alpha: float = 0.1, seed: int = 0) -> Path:
    """Train common.build_student() on the teacher's logits (temperature `temperature`) and the labels (weight `alpha`)."""
    import tf_keras

    from edge_sdk.compression import distillation_loss, pack_distillation_targets

    tf_keras.utils.set_random_seed(seed)
    x, y = common.load_xy(train_path)
    teacher_logits = common.load_tf_keras(teacher_path).predict(x, verbose=0)
    student = common.build_student()
    student.compile(optimizer=tf_keras.optimizers.Adam(2e-3), loss=distillation_loss(temperature, alpha))
    student.fit(x, pack_distillation_targets(y, teacher_logits), epochs=epochs, batch_size=common.BATCH_SIZE, verbose=0)
    student.save(student_path)
    return student_path


def run(out: Path, epochs: int = 20) -> dict:
    train_path, test_path = common.write_digits_data(out)
    teacher_path = common.train_teacher(train_path, out / "teacher.h5", epochs)
    student_path = train_distilled_student(train_path, teacher_path, out / "student_distilled.h5", epochs)
    teacher, student = common.load_tf_keras(teacher_path), common.load_tf_keras(student_path)
    summary = {
        "teacher_parameters": teacher.count_params(), "student_parameters": student.count_params(),
        "teacher_accuracy": common.accuracy_of(teacher, test_path), "student_accuracy": common.accuracy_of(student, test_path),
    }
    print(f"teacher {summary['teacher_parameters']} parameters, top-1 {summary['teacher_accuracy']:.3f}; "
          f"distilled student {summary['student_parameters']} parameters, top-1 {summary['student_accuracy']:.3f}")
    summary["records"] = common.convert_and_bench(student_path, out, train_path, test_path, [("tflite", "fp32"), ("tflite", "int8")])
    common.print_figures({**{key: summary[key] for key in ("teacher_parameters", "student_parameters", "teacher_accuracy", "student_accuracy")},
                          "artifacts_ok": sum(record["status"] == "ok" for record in summary["records"])})
    return summary


SMOKE = {"epochs": 3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/distillation"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, the same code (tests/examples run it)")
    args = parser.parse_args(argv)
    run(args.out, **(SMOKE if args.smoke else {"epochs": args.epochs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
