"""QONNX `BipolarQuant`: the sign of x as +1 / -1 (zero maps to +1), times its scale."""

from __future__ import annotations

import numpy as np
import torch

from qfx.hls.ops import Bounds, Op, register
from qfx.hls.rtl.arrays import array


@register("BipolarQuant")
class BipolarQuant(Op):
    hls4ml_quantize_constants = False

    def check(self, node, graph):
        scale = graph.initializer(node.input[1]) if len(node.input) > 1 else None
        if scale is None or scale.size != 1 or scale.item() != 1.0:
            raise ValueError(f"node {node.name}: BipolarQuant is supported with scale 1 only")

    def emulate(self, node, args, emu):
        return torch.where(args[0] >= 0, 1.0, -1.0).double()

    def trace(self, node, args, tracer):
        signs = [v.is_negative() * -2.0 + 1.0 for v in np.ravel(args[0]._vars)]  # the sign bit: 0 -> +1, 1 -> -1
        return array(np.array(signs, dtype=object).reshape(args[0].shape))

    def bounds(self, node, inputs, graph):
        return Bounds(-1.0, 1.0, 0)
