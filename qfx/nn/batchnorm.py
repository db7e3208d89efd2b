"""Fixed-point batch normalization (y = x * scale + shift, both quantized) and folding into a layer."""

from __future__ import annotations

import copy

import torch
from torch import nn

from qfx.exact import product_format, sum_format
from qfx.nn.base import FixedLayer, result_quantizer
from qfx.nn.linear import _WeightedLayer
from qfx.quant import Spec, format_of


class _BatchNorm(FixedLayer):
    """Batch statistics while training, running statistics in eval; the per-channel affine map that
    hls4ml's BatchNormalization computes, with `scale` and `shift` in fixed point."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        *,
        scale: Spec | int = 8,
        shift: Spec | int = 8,
        result: Spec | int | None = 8,
    ) -> None:
        super().__init__(num_features, eps, momentum)  # the torch BatchNormNd next in the MRO
        self.scale_q = Spec.of(scale).build()
        self.shift_q = Spec.of(shift).build()
        self.result_q = result_quantizer(result)

    def scale_shift(self, x: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Float scale and shift; from the batch x while training, else from running statistics."""
        if x is not None and self.training:
            dims = [0, *range(2, x.dim())]
            mean = x.mean(dims)
            var = x.var(dims, unbiased=False)
            with torch.no_grad():
                n = x.numel() / x.shape[1]
                self.running_mean.lerp_(mean.detach().to(self.running_mean), self.momentum)
                self.running_var.lerp_((var.detach() * n / max(n - 1, 1)).to(self.running_var), self.momentum)
                self.num_batches_tracked += 1
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight * torch.rsqrt(var + self.eps)
        return scale, self.bias - mean * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        x_fmt = format_of(x, name)
        scale, shift = self.scale_shift(x)
        scale_q = self.scale_q(scale.to(x.dtype))
        shift_q = self.shift_q(shift.to(x.dtype))
        view = [1, -1] + [1] * (x.dim() - 2)
        y = x * scale_q.reshape(view) + shift_q.reshape(view)
        exact = sum_format(product_format(x_fmt, self.scale_q.format, name), self.shift_q.format, name)
        return self.finish(y, exact)


class BatchNorm1d(_BatchNorm, nn.BatchNorm1d):
    pass


class BatchNorm2d(_BatchNorm, nn.BatchNorm2d):
    pass


@torch.no_grad()
def fold_batch_norm(layer: _WeightedLayer, bn: nn.modules.batchnorm._BatchNorm) -> _WeightedLayer:
    """A copy of a qfx Linear/Conv with `bn` (its running statistics) folded into weight and bias.

    The copy's weight and bias quantizers recalibrate on the next forward, since the values changed;
    its result quantizer takes the place of the batch norm's.
    """
    if not isinstance(layer, _WeightedLayer):
        raise ValueError(f"fold_batch_norm: layer must be a qfx Linear or Conv, got {type(layer).__name__}")
    if bn.num_features != layer.weight.shape[0]:
        raise ValueError(f"fold_batch_norm: bn has {bn.num_features} channels, layer {layer.weight.shape[0]}")
    fused = copy.deepcopy(layer)
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    fused.weight.mul_(scale.reshape(-1, *[1] * (fused.weight.dim() - 1)))
    bias = fused.bias if fused.bias is not None else torch.zeros_like(scale)
    fused.bias = nn.Parameter(bias * scale + shift)
    if fused.bias_q is None:
        fused.bias_q = Spec(fused.weight_q.width).build()
    for q in (fused.weight_q, fused.bias_q):
        q.calibrated.fill_(False)
    if isinstance(bn, _BatchNorm):
        fused.result_q = copy.deepcopy(bn.result_q)
    return fused
