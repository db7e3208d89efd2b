"""Reference QFX models, rebuilt from the small `arch` dict that checkpoints store."""

from __future__ import annotations

from typing import Any

from torch import nn

import qfx.nn as qnn
from qfx.quant import Spec


def digits_mlp(
    bits: int = 8, hidden: tuple[int, ...] = (64, 32), k_hot: int | None = None, bias_bits: int | None = None
) -> qnn.Sequential:
    """MLP 64-64-32-10 with every tensor in fixed point: input, weights, biases, accumulators,
    activations (unsigned ReLU outputs of `bits`) and exact logits."""
    layers: list[nn.Module] = [qnn.Quant(Spec(bits, signed=False))]
    width = 64
    weight = Spec(bits, k_hot=k_hot)
    bias = bias_bits or bits
    for h in hidden:
        layers += [qnn.Linear(width, h, weight=weight, bias_spec=bias, result=None), qnn.ReLU(bits)]
        width = h
    layers.append(qnn.Linear(width, 10, weight=weight, bias_spec=bias, result=None))
    return qnn.Sequential(*layers)


def digits_cnn(bits: int = 8) -> qnn.Sequential:
    """conv+BN+ReLU+pool+dense on 8x8 digits images."""
    return qnn.Sequential(
        qnn.Quant(Spec(bits, signed=False)),
        qnn.Conv2d(1, 8, 3, padding=1, weight=bits, result=None),
        qnn.BatchNorm2d(8, scale=bits, shift=bits, result=bits),
        qnn.ReLU(bits),
        qnn.MaxPool2d(2),
        qnn.Flatten(),
        qnn.Linear(8 * 4 * 4, 10, weight=bits, result=None),
    )


ARCHITECTURES = {"digits_mlp": digits_mlp, "digits_cnn": digits_cnn}


def build(arch: dict[str, Any]) -> nn.Module:
    """Rebuild a model from {"name": ..., **kwargs}."""
    kwargs = dict(arch)
    name = kwargs.pop("name")
    if name not in ARCHITECTURES:
        raise ValueError(f"arch name {name!r} is not one of {', '.join(ARCHITECTURES)}")
    if "hidden" in kwargs:
        kwargs["hidden"] = tuple(kwargs["hidden"])
    return ARCHITECTURES[name](**kwargs)
