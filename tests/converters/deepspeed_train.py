"""Train the digits CNN with a DeepSpeed ZeRO engine on CPU (gloo, DeepSpeed's CPU accelerator) and save a checkpoint.

Run as a process of its own (DeepSpeed initialises torch.distributed process-wide):
    python -m tests.converters.deepspeed_train OUT TRAIN_NPZ --stage 2 [--rank R --world-size N --port P] [--bf16]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("train", type=Path)
    parser.add_argument("--stage", type=int, default=2)
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--world-size", type=int, default=1)
    parser.add_argument("--port", type=int, default=29511)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()
    os.environ.update({"RANK": str(args.rank), "LOCAL_RANK": str(args.rank), "WORLD_SIZE": str(args.world_size),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(args.port), "DS_ACCELERATOR": "cpu"})
    import deepspeed
    import torch

    from tests.converters.torch_nets import digits_cnn, digits_tensors

    deepspeed.init_distributed(dist_backend="gloo")
    model = digits_cnn()
    x, y = digits_tensors(args.train)
    config = {
        "train_micro_batch_size_per_gpu": len(x) // args.world_size,
        "gradient_accumulation_steps": 1,
        "zero_optimization": {"stage": args.stage},
        "zero_allow_untested_optimizer": True,
        "bf16": {"enabled": args.bf16},
    }
    engine, *_ = deepspeed.initialize(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-2), config=config)
    shard = slice(args.rank, None, args.world_size)
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    for _ in range(args.steps):
        loss = torch.nn.functional.cross_entropy(engine(x[shard].to(dtype)).float(), y[shard])
        engine.backward(loss)
        engine.step()
    engine.save_checkpoint(str(args.out))


if __name__ == "__main__":
    main()
