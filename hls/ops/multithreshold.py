"""QONNX `MultiThreshold`: y = out_bias + out_scale * (how many of the channel's thresholds x is >= to).

FINN writes it for BatchNorm and activation quantizers; qfx writes it where a float affine or a
non-power-of-two scale stands before a quantizer (`qfx.hls.scales`). Thresholds are exact binary
fractions, so each comparison is exact and the output is an exact fixed-point level.
"""

from __future__ import annotations

import numpy as np
import torch

from qfx.exact import exact_format
from qfx.fixed import FixedFormat
from qfx.hls.ops import Bounds, Op, attrs, layer_features, register
from qfx.hls.rtl.arrays import array

# qonnx's reading of a MultiThreshold without data_layout: the layout its input's rank implies.
LAYOUT_BY_RANK = {2: "NC", 3: "NWC", 4: "NCHW"}


def channel_axis(node, rank: int) -> int:
    """The axis the thresholds' rows index (qonnx's rule: data_layout, else by rank)."""
    layout = str(attrs(node).get("data_layout") or LAYOUT_BY_RANK.get(rank, "NC"))
    if len(layout) != rank or "C" not in layout:
        raise ValueError(f"node {node.name}: data_layout {layout!r} does not describe a rank-{rank} input")
    return layout.index("C")


def thresholds(node, graph) -> np.ndarray:
    """The constant thresholds, one row per channel (or one row for all), each row sorted."""
    t = graph.initializer(node.input[1]) if len(node.input) > 1 else None
    if t is None or t.ndim != 2:
        raise ValueError(f"node {node.name}: MultiThreshold needs constant thresholds of shape [channels, steps]")
    if not np.all(np.isfinite(t)):
        raise ValueError(f"node {node.name}: thresholds must be finite")
    return np.sort(t, axis=1)


def output_levels(node) -> tuple[float, float]:
    """out_scale and out_bias (qonnx's defaults 1 and 0)."""
    a = attrs(node)
    return float(a.get("out_scale", 1.0)), float(a.get("out_bias", 0.0))


def result_format(node, graph) -> FixedFormat:
    """The exact type of the output levels out_bias + out_scale * [0, steps]."""
    scale, bias = output_levels(node)
    steps = thresholds(node, graph).shape[1]
    return exact_format(np.array([bias, bias + scale, bias + scale * steps]), f"node {node.name} output")


def _rows(t: np.ndarray, channels: int) -> np.ndarray:
    return np.broadcast_to(t, (channels, t.shape[1]))


@register("MultiThreshold")
class MultiThreshold(Op):
    defaults = {"out_scale": 1.0, "out_bias": 0.0}
    hls4ml_quantize_constants = False

    def check(self, node, graph):
        t = thresholds(node, graph)
        shape = graph.shape(node.input[0])
        channels = shape[channel_axis(node, len(shape))]
        if t.shape[0] not in (1, channels):
            raise ValueError(
                f"node {node.name}: {t.shape[0]} rows of thresholds for {channels} channels (need {channels} or 1)"
            )
        scale, _ = output_levels(node)
        if scale <= 0 or np.frexp(scale)[0] != 0.5:
            raise ValueError(f"node {node.name}: out_scale {scale} is not a positive power of two")
        result_format(node, graph)
        exact_format(t, f"node {node.name} thresholds")

    def emulate(self, node, args, emu):
        x = args[0]
        axis = channel_axis(node, x.dim())
        t = torch.from_numpy(thresholds(node, emu.graph))
        moved = x.movedim(axis, -1).unsqueeze(-1)
        counts = (moved >= t).sum(-1).to(torch.float64).movedim(-1, axis)
        scale, bias = output_levels(node)
        return bias + scale * counts

    def trace(self, node, args, tracer):
        x = args[0]
        axis = channel_axis(node, len(x.shape))
        t = _rows(thresholds(node, tracer.graph), x.shape[axis])
        scale, bias = output_levels(node)
        out = np.empty(x.shape, dtype=object)
        for index, v in np.ndenumerate(x._vars):
            # a comparison is a subtraction's sign; ones the range decides are constants da4ml drops
            bits = [v >= float(level) for level in t[index[axis]]]
            while len(bits) > 1:  # an adder tree, not a chain: log depth
                bits = [a + b for a, b in zip(bits[::2], bits[1::2], strict=False)] + bits[len(bits) // 2 * 2 :]
            out[index] = bits[0] * scale + bias
        return array(out)

    def bounds(self, node, inputs, graph):
        fmt = result_format(node, graph)
        return Bounds(*[float(v) for v in (fmt.min_value, fmt.max_value)], fmt.frac_bits)

    def hls4ml_setup(self):
        from qfx.hls.ops import multithreshold_hls4ml

        multithreshold_hls4ml.register()

    def hls4ml_config(self, node, graph, layer):
        precision = layer.setdefault("Precision", {})
        precision["threshold"] = exact_format(thresholds(node, graph), f"node {node.name}").to_hls4ml()
        precision["result"] = result_format(node, graph).to_hls4ml()

    def features(self, node, graph):
        return layer_features(node, graph, "activation")
