"""The embedded data set: scikit-learn's digits (8x8 images, 10 classes), shipped inside the package."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


@dataclass(frozen=True)
class Split:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def digits(seed: int = 0, test_size: float = 0.2, images: bool = False) -> Split:
    """Pixels scaled to [0, 1] (the raw 0..16 counts / 16, exact in fixed point), a stratified split.

    images=True gives [N, 1, 8, 8] for convolutional models, else [N, 64].
    """
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.int64)
    idx = torch.arange(len(y)).numpy()
    train, test = train_test_split(idx, test_size=test_size, stratify=data.target, random_state=seed)
    if images:
        x = x.reshape(-1, 1, 8, 8)
    return Split(x[train], y[train], x[test], y[test])
