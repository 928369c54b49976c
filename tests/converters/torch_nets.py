"""PyTorch models defined for the tests (no torchvision): factories importable as `tests.converters.torch_nets:NAME`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def digits_cnn() -> Any:
    """A small CNN for scikit-learn's 8x8 digits, NCHW (1, 1, 8, 8) -> 10 logits."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32 * 4 * 4, 10),
    )


def digits_cnn_wider() -> Any:
    """Same layers as digits_cnn with another width: its checkpoints do not fit digits_cnn (shape mismatches)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 32, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32 * 4 * 4, 10),
    )


def _inverted_residual(nn: Any, inputs: int, outputs: int, stride: int, expand: int) -> Any:
    hidden = inputs * expand

    class InvertedResidual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = nn.Sequential(
                nn.Conv2d(inputs, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
                nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
                nn.Conv2d(hidden, outputs, 1, bias=False), nn.BatchNorm2d(outputs),
            )
            self.residual = stride == 1 and inputs == outputs

        def forward(self, x: Any) -> Any:
            return x + self.block(x) if self.residual else self.block(x)

    return InvertedResidual()


def mobilenet_v2_style() -> Any:
    """MobileNetV2's building blocks (inverted residuals, depthwise convs, BatchNorm, ReLU6), small: (1, 3, 64, 64) -> 10.

    Random initialisation with a fixed seed; BatchNorm statistics are set to non-trivial values so that folding them
    into the convolutions is exercised."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
        _inverted_residual(nn, 16, 16, 1, 1),
        _inverted_residual(nn, 16, 24, 2, 4), _inverted_residual(nn, 24, 24, 1, 4),
        _inverted_residual(nn, 24, 32, 2, 4), _inverted_residual(nn, 32, 32, 1, 4),
        nn.Conv2d(32, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, 10),
    )
    generator = torch.Generator().manual_seed(1)
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.running_mean.copy_(0.1 * torch.randn(layer.num_features, generator=generator))
            layer.running_var.copy_(0.5 + torch.rand(layer.num_features, generator=generator))
    return model.eval()


def digits_tensors(npz: Path) -> tuple[Any, Any]:
    """(x NCHW float in [0, 1], y) of a digits .npz written by examples.compression.common.write_digits_data."""
    import torch

    with np.load(npz) as data:
        return torch.from_numpy(data["x"][:, None] / 16.0).float(), torch.from_numpy(data["y"]).long()


def train_digits(model: Any, train_npz: Path, epochs: int = 60) -> Any:
    """A few full-batch Adam steps (about a second): enough for ~95 % on held-out digits."""
    import torch

    torch.manual_seed(0)
    x, y = digits_tensors(train_npz)
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    model.train()
    for _ in range(epochs):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


def accuracy(model: Any, test_npz: Path) -> float:
    import torch

    x, y = digits_tensors(test_npz)
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def sample_images(size: int = 64, count: int = 16) -> np.ndarray:
    """Fixed real images: crops of scikit-learn's two sample photos, NHWC float32 in [0, 1]."""
    from sklearn.datasets import load_sample_images

    crops = []
    for photo in load_sample_images().images:  # two 427x640 RGB photos
        for row in range(0, photo.shape[0] - size, (photo.shape[0] - size) // 3):
            for column in range(0, photo.shape[1] - size, (photo.shape[1] - size) // 3):
                crops.append(photo[row:row + size, column:column + size])
    return (np.stack(crops[:count]) / 255.0).astype(np.float32)


class NotAWeight:
    """A plain Python object: a checkpoint that pickles one is not a state dict of tensors (weights_only refuses it)."""
