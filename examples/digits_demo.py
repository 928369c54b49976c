"""The edge-sdk demo: the pipeline on the embedded config (examples/edge.yaml).

A teacher CNN, a student distilled from it, that student pruned (tfmot) and quantization-aware trained (tfmot),
all on scikit-learn's digits; then `edge-sdk pipeline`: TFLite fp32/int8 and ONNX fp32/int8, benched on the
desktop target against each float model and the teacher, into report.html and report.md.

Run: `make demo`, or `python examples/digits_demo.py --out demo-output [--epochs 20]`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root holds `examples` and `targets`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.compression import common  # noqa: E402
from examples.compression.distillation import train_distilled_student  # noqa: E402
from examples.compression.pruning import prune_model  # noqa: E402
from examples.compression.qat import quantization_aware_finetune  # noqa: E402

CONFIG = Path(__file__).resolve().parent / "edge.yaml"


def train_models(out: Path, epochs: int) -> None:
    """data/ and models/ beside the config, as examples/edge.yaml names them."""
    train_path, _ = common.write_digits_data(out / "data")
    models = out / "models"
    models.mkdir(parents=True, exist_ok=True)
    teacher = common.train_teacher(train_path, models / "teacher.h5", epochs)
    student = train_distilled_student(train_path, teacher, models / "student_distilled.h5", epochs)
    prune_model(student, train_path, models / "student_pruned.h5", target_sparsity=0.75, epochs=max(2, epochs // 2))
    quantization_aware_finetune(student, train_path, models / "student_qat.h5", epochs=max(1, epochs // 4))


def run_demo(out: Path, epochs: int = 20, quiet: bool = False) -> object:
    from edge_sdk.pipeline import run_pipeline, summary_markdown
    from edge_sdk.progress import Progress

    out.mkdir(parents=True, exist_ok=True)
    if not (out / "models" / "student_qat.h5").exists():
        train_models(out, epochs)
    config = out / "edge.yaml"
    shutil.copyfile(CONFIG, config)
    run = run_pipeline(config, progress=Progress(enabled=not quiet))
    print(summary_markdown(run.rows))
    common.print_figures({"artifacts": len(run.rows), "artifacts_ok": sum(row["status"] == "ok" for row in run.rows)})
    print(f"report: {run.files['html']}")
    print(f"report: {run.files['md']}")
    return run


SMOKE = {"epochs": 8}  # tests/examples/test_digits_demo.py: the same pipeline on models trained briefly


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--retrain", action="store_true", help="train the models again even if they exist")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, the same code (tests/examples run it)")
    args = parser.parse_args(argv)
    if args.retrain:
        shutil.rmtree(args.out / "models", ignore_errors=True)
    run_demo(args.out, **(SMOKE if args.smoke else {"epochs": args.epochs}), quiet=args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
