"""Fixed-point pooling.  Max is exact in the input format.  Average is the exact sum shifted right,
so the pool area must be a power of two: hls4ml divides in its accumulator type (`y /= length`),
which is exact only then."""

from __future__ import annotations

import math

import torch
from torch import nn

from qfx.fixed import FixedFormat
from qfx.nn.base import FixedLayer, result_quantizer
from qfx.quant import Spec, format_of


class _MaxPool(FixedLayer):
    result_q = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.keep(super().forward(x), format_of(x, type(self).__name__))


class MaxPool1d(_MaxPool, nn.MaxPool1d):
    pass


class MaxPool2d(_MaxPool, nn.MaxPool2d):
    pass


class _AvgPool(FixedLayer):
    def _check(self, result: Spec | int | None) -> None:
        area = math.prod(self.kernel_size) if isinstance(self.kernel_size, tuple) else self.kernel_size
        if area & (area - 1):
            raise ValueError(
                f"{type(self).__name__}: pool area {area} is not a power of two, so the average "
                "is not exact in fixed point; use a power-of-two pool or MaxPool"
            )
        if any(p != 0 for p in (self.padding if isinstance(self.padding, tuple) else (self.padding,))):
            raise ValueError(f"{type(self).__name__}: padding must be 0 (padded averages divide by fewer terms)")
        self.shift = area.bit_length() - 1
        self.result_q = result_quantizer(result)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmt = format_of(x, type(self).__name__)
        # sum of 2^k terms gains k integer bits; dividing by 2^k moves them below the binary point.
        exact = FixedFormat(fmt.width + self.shift, fmt.int_bits, fmt.signed, wide=True)
        return self.finish(super().forward(x), exact)


class AvgPool1d(_AvgPool, nn.AvgPool1d):
    def __init__(self, kernel_size: int, stride: int | None = None, *, result: Spec | int | None = None) -> None:
        nn.AvgPool1d.__init__(self, kernel_size, stride)
        self._check(result)


class AvgPool2d(_AvgPool, nn.AvgPool2d):
    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        *,
        result: Spec | int | None = None,
    ) -> None:
        nn.AvgPool2d.__init__(self, kernel_size, stride)
        self.kernel_size = nn.modules.utils._pair(self.kernel_size)
        self._check(result)
