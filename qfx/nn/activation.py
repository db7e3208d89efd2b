"""Fixed-point ReLU: max(x, 0) is exact in the input format; an optional result quantizer narrows it."""

from __future__ import annotations

import torch
from torch import nn

from qfx.nn.base import FixedLayer, result_quantizer
from qfx.quant import Spec, format_of


class ReLU(FixedLayer):
    """`result` (e.g. Spec(4, signed=False)) re-quantizes the output, like a quantized ReLU in hls4ml."""

    def __init__(self, result: Spec | int | None = None) -> None:
        super().__init__()
        self.result_q = result_quantizer(Spec.of(result, signed=False) if result is not None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.keep(nn.functional.relu(x), format_of(x, "ReLU"))
