"""Fixed-point dense and convolution layers: quantized weights and bias, exact accumulator."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from qfx.exact import accumulate_format, product_format, sum_format
from qfx.nn.base import FixedLayer, result_quantizer
from qfx.quant import Spec, format_of


class _WeightedLayer(FixedLayer):
    """Shared by Linear and Conv: y = result_q(sum(x * weight_q) + bias_q), accumulated exactly."""

    def _init_quantizers(
        self, out_channels: int, weight: Spec | int, bias: Spec | int | None, result: Spec | int | None, has_bias: bool
    ) -> None:
        weight_spec = Spec.of(weight)
        self.weight_q = weight_spec.build(out_channels, axis=0)
        bias_spec = Spec.of(bias if bias is not None else weight_spec.width)
        # A bias is added once per output: per-channel binary points buy nothing; K-hot does not apply.
        self.bias_q = Spec(bias_spec.width, True, bias_spec.rounding, bias_spec.overflow).build() if has_bias else None
        self.result_q = result_quantizer(result)

    def fan_in(self) -> int:
        return math.prod(self.weight.shape[1:])

    def _op(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        x_fmt = format_of(x, name)
        w = self.weight_q(self.weight.to(x.dtype))
        acc_fmt = accumulate_format(product_format(x_fmt, self.weight_q.format, name), self.fan_in(), name)
        b = None
        if self.bias_q is not None:
            b = self.bias_q(self.bias.to(x.dtype))
            acc_fmt = sum_format(acc_fmt, self.bias_q.format, name)
        return self.finish(self._op(x, w, b), acc_fmt)


class Linear(_WeightedLayer, nn.Linear):
    """nn.Linear in fixed point. `weight`/`bias`/`result` are widths or Specs; result=None keeps the
    exact accumulator (useful before a BatchNorm or an Add)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        weight: Spec | int = 8,
        bias_spec: Spec | int | None = None,
        result: Spec | int | None = 8,
    ) -> None:
        super().__init__(in_features, out_features, bias)  # the torch nn.Linear next in the MRO
        self._init_quantizers(out_features, weight, bias_spec, result, bias)

    def _op(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, w, b)


class _Conv(_WeightedLayer):
    """Shared by Conv1d and Conv2d (zero padding only: padding zeros are exact)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] = 0,
        groups: int = 1,
        bias: bool = True,
        *,
        weight: Spec | int = 8,
        bias_spec: Spec | int | None = None,
        result: Spec | int | None = 8,
    ) -> None:
        # the torch ConvNd next in the MRO
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=bias)
        self._init_quantizers(out_channels, weight, bias_spec, result, bias)

    def _op(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return self._conv_forward(x, w, b)  # type: ignore[attr-defined]


class Conv1d(_Conv, nn.Conv1d):
    """nn.Conv1d in fixed point."""


class Conv2d(_Conv, nn.Conv2d):
    """nn.Conv2d in fixed point."""
