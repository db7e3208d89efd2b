"""Fixed-point residual add: the exact sum format, then an optional result quantizer."""

from __future__ import annotations

import torch

from qfx.exact import sum_format
from qfx.nn.base import FixedLayer, result_quantizer
from qfx.quant import Spec, format_of


class Add(FixedLayer):
    def __init__(self, result: Spec | int | None = 8) -> None:
        super().__init__()
        self.result_q = result_quantizer(result)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        exact = sum_format(format_of(a, "Add (first input)"), format_of(b, "Add (second input)"), "Add")
        return self.finish(a + b, exact)
