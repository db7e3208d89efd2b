"""`AveragePool`: the window's sum divided by its size (count_include_pad=1) or by its real elements;
exact in fixed point only when that divisor is a power of two (a shift)."""

from __future__ import annotations

import math

import numpy as np
import torch

from qfx.hls.ops import Bounds, attrs, register
from qfx.hls.ops.pooling import Pool


def divisors(pool: Pool, node, shape: tuple[int, ...]) -> np.ndarray:
    """The divisor of each window of one sample."""
    idx = pool.windows(node, shape)
    nd = len(attrs(node)["kernel_shape"])
    counts = (idx >= 0).reshape(*idx.shape[: nd + 1], -1).sum(-1)
    return np.full_like(counts, math.prod(idx.shape[nd + 1 :])) if attrs(node)["count_include_pad"] else counts


@register("AveragePool")
class AveragePool(Pool):
    defaults = {**Pool.defaults, "count_include_pad": 0}
    pad_value = 0.0

    def check(self, node, graph):
        super().check(node, graph)
        bad = sorted({int(d) for d in np.ravel(divisors(self, node, tuple(graph.shape(node.input[0])[1:])))})
        if any(not math.log2(d).is_integer() for d in bad):
            raise ValueError(
                f"node {node.name}: AveragePool divides by {bad}; only power-of-two divisors are exact "
                "(choose a power-of-two kernel, or pads with count_include_pad=1)"
            )

    def emulate(self, node, args, emu):
        a = attrs(node)
        x = self.padded(node, args[0])
        for dim, (k, stride) in enumerate(zip(a["kernel_shape"], a["strides"], strict=True)):
            x = x.unfold(2 + dim, k, stride)
        sums = x.sum(dim=tuple(range(-len(a["kernel_shape"]), 0)))  # exact: sums of fixed-point values
        d = np.moveaxis(divisors(self, node, tuple(args[0].shape[1:])), -1, 0)
        return sums / torch.from_numpy(np.ascontiguousarray(d)).to(sums.dtype)

    def bounds(self, node, inputs, graph):
        x = inputs[0]
        if x is None:
            return None
        shifts = np.log2(divisors(self, node, tuple(graph.shape(node.input[0])[1:])))
        if not np.all(shifts == np.round(shifts)):
            return None  # a mean over a non-power-of-two count is on no binary grid
        return Bounds(x.lo, x.hi, x.frac + int(shifts.max()))

    def reduce(self, node, terms, count):
        divisor = count if attrs(node)["count_include_pad"] else len(terms)
        return sum(terms[1:], terms[0]) * (1.0 / divisor)

    def hls4ml_setup(self):
        super().hls4ml_setup()
        _channels_last()


def _channels_last() -> None:
    """qonnx's channels-last conversion knows Conv, MaxPool and BatchNormalization only, and leaves an
    AveragePool in NCHW, which hls4ml then refuses. AveragePool's shape rule is MaxPool's: register the
    channels-last MaxPool under AveragePool's name with qonnx's registry, and in the two lists qonnx
    computed from that registry at import."""
    import qonnx.transformation.channels_last as channels_last
    from qonnx.custom_op.channels_last.base_wrapped_op import ChannelsLastWrappedOp
    from qonnx.custom_op.channels_last.max_pool import MaxPool_v1
    from qonnx.custom_op.registry import add_op_to_domain

    class AveragePool_v1(MaxPool_v1):
        def get_nodeattr_types(self):
            return {**super().get_nodeattr_types(), "count_include_pad": ("i", False, 0), "ceil_mode": ("i", False, 0)}

    add_op_to_domain("qonnx.custom_op.channels_last", AveragePool_v1)
    for known in (channels_last._channelsLast_node_types, ChannelsLastWrappedOp._channelsLast_node_types):
        if "AveragePool" not in known:
            known.append("AveragePool")
