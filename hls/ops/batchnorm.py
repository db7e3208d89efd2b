"""`BatchNormalization` in inference form: x * scale + bias with scale = gamma / sqrt(var + eps) and
bias = beta - mean * scale, computed once here; both must be exact in fixed point."""

from __future__ import annotations

import numpy as np
import torch

from qfx.exact import exact_format
from qfx.fixed import FixedFormat
from qfx.hls.ops import Op, attrs, layer_features, register


def scale_bias(node, graph) -> tuple[np.ndarray, np.ndarray]:
    """The per-channel (scale, bias) the node applies, from its constant parameters."""
    params = [graph.constant(t) for t in node.input[1:5]]
    if any(p is None for p in params):
        raise ValueError(f"node {node.name}: BatchNormalization parameters must be constants")
    gamma, beta, mean, var = params
    scale = gamma / np.sqrt(var + float(attrs(node)["epsilon"]))
    return scale, beta - mean * scale


def formats(node, graph) -> tuple[FixedFormat, FixedFormat]:
    """Exact formats of the scale and bias, or a ValueError saying how to make them exact."""
    scale, bias = scale_bias(node, graph)
    try:
        return exact_format(scale, node.name), exact_format(bias, node.name)
    except ValueError:
        raise ValueError(
            f"node {node.name}: BatchNormalization scale/bias are not exact in fixed point; "
            "quantize them (qfx.nn.BatchNorm) or fold them into the previous layer"
        ) from None


def _view(values: np.ndarray, rank: int) -> np.ndarray:
    return values.reshape([1, -1] + [1] * (rank - 2))


@register("BatchNormalization")
class BatchNormalization(Op):
    defaults = {"epsilon": 1e-5}
    # its constants are typed through the layer config (hls4ml_config), not through inserted Quant nodes
    hls4ml_quantize_constants = False

    def check(self, node, graph):
        formats(node, graph)

    def emulate(self, node, args, emu):
        scale, bias = scale_bias(node, emu.graph)
        x = args[0]
        return x * torch.from_numpy(_view(scale, x.dim())) + torch.from_numpy(_view(bias, x.dim()))

    def trace(self, node, args, tracer):
        scale, bias = scale_bias(node, tracer.graph)
        x = args[0]
        return tracer.scale(x, _view(scale, len(x.shape)), node.name) + _view(bias, len(x.shape))

    def hls4ml_config(self, node, graph, layer):
        scale, bias = formats(node, graph)
        precision = layer.setdefault("Precision", {})
        precision.update({"scale": scale.to_hls4ml(), "bias": bias.to_hls4ml(), "result": "auto"})

    def features(self, node, graph):
        return layer_features(node, graph, "batchnorm")
