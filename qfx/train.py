"""Training loop for QFX models: learned binary points get their own (larger) learning rate."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qfx.data import Split
from qfx.models import build
from qfx.nn import formats
from qfx.quant import FixedQuantizer


def param_groups(model: nn.Module, lr: float, format_lr: float) -> list[dict[str, Any]]:
    """Weights at `lr`; the learned integer bits at `format_lr` (they move in whole bits)."""
    fmt = {id(q.int_bits) for q in model.modules() if isinstance(q, FixedQuantizer)}
    rest = [p for p in model.parameters() if id(p) not in fmt]
    bits = [p for p in model.parameters() if id(p) in fmt]
    return [{"params": rest, "lr": lr}, {"params": bits, "lr": format_lr, "weight_decay": 0.0}]


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return (model(x).argmax(1) == y).double().mean().item()


@torch.no_grad()
def exact_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of the bit-exact emulation: a float64 copy of the model, so every sum is exact."""
    return accuracy(copy.deepcopy(model).double(), x.double(), y)


@torch.no_grad()
def calibrate(model: nn.Module, x: torch.Tensor) -> None:
    """Run one forward pass in train mode so every quantizer sets its binary point from the data."""
    model.train()
    model(x)


def fit(
    model: nn.Module,
    data: Split,
    epochs: int = 60,
    lr: float = 3e-3,
    format_lr: float = 2e-2,
    batch_size: int = 64,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Adam with cosine decay, cross-entropy; returns final train/test accuracy."""
    torch.manual_seed(seed)
    calibrate(model, data.x_train)
    opt = torch.optim.Adam(param_groups(model, lr, format_lr))
    steps = epochs * ((len(data.y_train) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(data.y_train))
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            loss = loss_fn(model(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if log and (epoch % 10 == 0 or epoch == 1 or epoch == epochs):
            log(
                f"epoch {epoch:3d}/{epochs}  loss {total / len(order):.4f}  "
                f"test {100 * accuracy(model, data.x_test, data.y_test):5.1f}%  ({time.perf_counter() - start:.1f} s)"
            )
    return {
        "train": exact_accuracy(model, data.x_train, data.y_train),
        "test": exact_accuracy(model, data.x_test, data.y_test),
    }


def save_checkpoint(path: Path, model: nn.Module, arch: dict[str, Any], metrics: dict[str, float]) -> None:
    """State dict, architecture and the learned formats (as C++ types), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(
        {
            "arch": arch,
            "state_dict": model.state_dict(),
            "metrics": metrics,
            "formats": {name: str(f) for name, f in formats(model).items()},
        },
        tmp,
    )
    tmp.replace(path)


def load_checkpoint(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The model (float64, eval mode, formats derived by one forward) and the checkpoint's metadata."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        model = build(ckpt["arch"])
        model.load_state_dict(ckpt["state_dict"])
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None
    except Exception as e:  # torch's unpickling and state-dict errors share no base
        reason = (str(e).splitlines() or [""])[0][:200]
        raise ValueError(f"{path}: not a qfx checkpoint ({type(e).__name__}: {reason})") from None
    return model.double().eval(), ckpt
