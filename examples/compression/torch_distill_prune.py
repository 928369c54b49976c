"""PyTorch: a student distilled from a teacher, pruned with `torch.nn.utils.prune` (made permanent with
`prune.remove`), exported to ONNX fp32 and int8 and benched against its float ONNX export.

Run: `python examples/compression/torch_distill_prune.py --out out/torch [--epochs 20 --sparsity 0.5]`
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root holds `examples` and `targets`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.compression import common  # noqa: E402

# The torch models take NCHW inputs: the raw 8x8 digits get a channel axis first.
PREPROCESS = {"scale": 1 / 16, "layout": "NCHW"}


def build_cnn(channels: int, hidden: int) -> "torch.nn.Module":  # noqa: F821
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(channels * 16, hidden), nn.ReLU(), nn.Linear(hidden, 10),
    )


def train(model: "torch.nn.Module", x: "torch.Tensor", y: "torch.Tensor", epochs: int, teacher: "torch.nn.Module | None" = None, temperature: float = 4.0, alpha: float = 0.1) -> "torch.nn.Module":  # noqa: F821
    """Cross-entropy on the labels, or the distillation loss when a teacher is given."""
    import torch

    from edge_sdk.compression import torch_distillation_loss

    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(common.BATCH_SIZE):
            logits = model(x[batch])
            if teacher is None:
                loss = torch.nn.functional.cross_entropy(logits, y[batch])
            else:
                with torch.no_grad():
                    teacher_logits = teacher(x[batch])
                loss = torch_distillation_loss(logits, teacher_logits, y[batch], temperature, alpha)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def prune_permanently(model: "torch.nn.Module", sparsity: float) -> "torch.nn.Module":  # noqa: F821
    """L1-magnitude pruning of every conv and linear weight, then `prune.remove` bakes the zeros into the weights
    (a model that still has its masks exports its dense *_orig weights plus a multiplication)."""
    from torch import nn
    from torch.nn.utils import prune

    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            prune.l1_unstructured(module, "weight", amount=sparsity)
            prune.remove(module, "weight")
    return model


def run(out: Path, epochs: int = 20, sparsity: float = 0.5) -> dict:
    import numpy as np
    import torch

    import edge_sdk
    from edge_sdk.bench import BenchSettings
    from edge_sdk.compression import weight_statistics_of_model
    from edge_sdk.tables import results_table

    torch.manual_seed(0)
    train_path, test_path = common.write_digits_data(out)
    with np.load(train_path, allow_pickle=False) as data:
        x, y = torch.from_numpy(data["x"][:, None] / 16.0).float(), torch.from_numpy(data["y"])
    teacher = train(build_cnn(32, 256), x, y, epochs)
    student = train(build_cnn(8, 32), x, y, epochs, teacher=teacher)
    # A short fine-tune after pruning would regrow the zeros unless the masks stay; here the pruning is one-shot.
    student = prune_permanently(student, sparsity)
    print(f"student weight sparsity after prune.remove: {weight_statistics_of_model(student)['sparsity']:.1%}")
    artifacts = []
    for mode in ("fp32", "int8"):
        artifact = edge_sdk.convert(
            student, out / f"student_pruned_{mode}.onnx", to="onnx", mode=mode, input_shapes={"": [1, 1, 8, 8]},
            calibration=train_path if mode == "int8" else None, validation_data=test_path, preprocess=PREPROCESS, overwrite=True,
        )
        artifacts.append(artifact.path)
    results = edge_sdk.benchmark(artifacts, test_path, reference=artifacts[0], settings=BenchSettings(runs=50, warmup=5))
    records = [result.to_dict() for result in results]
    print(results_table(records))
    manifest = edge_sdk.inspect_artifact(artifacts[0])["manifest"]
    common.print_figures({"weight_sparsity": manifest["weights"]["sparsity"], "artifacts_ok": sum(record["status"] == "ok" for record in records)})
    return {"records": records, "manifest": manifest}


SMOKE = {"epochs": 2, "sparsity": 0.5}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/torch"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, the same code (tests/examples run it)")
    args = parser.parse_args(argv)
    run(args.out, **(SMOKE if args.smoke else {"epochs": args.epochs, "sparsity": args.sparsity}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
