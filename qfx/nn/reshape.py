"""Flatten keeps values, so it keeps their format."""

from __future__ import annotations

import torch
from torch import nn

from qfx.nn.base import FixedLayer
from qfx.quant import format_of


class Flatten(FixedLayer, nn.Flatten):
    result_q = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.keep(super().forward(x), format_of(x, "Flatten"))
