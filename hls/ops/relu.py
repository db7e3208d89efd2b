"""`Relu`: max(x, 0), a comparison in hardware."""

from __future__ import annotations

import numpy as np
import torch

from qfx.hls.ops import Bounds, Op, layer_features, register


@register("Relu")
class Relu(Op):
    def emulate(self, node, args, emu):
        return torch.relu(args[0])

    def trace(self, node, args, tracer):
        return np.maximum(args[0], 0.0)

    def bounds(self, node, inputs, graph):
        x = inputs[0]
        return None if x is None else Bounds(max(x.lo, 0.0), max(x.hi, 0.0), x.frac)

    def features(self, node, graph):
        return layer_features(node, graph, "relu")
