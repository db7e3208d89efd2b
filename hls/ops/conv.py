"""`Conv` 1-D and 2-D with constant weights: padding and stride (dilation and groups are emulated and
traced, but hls4ml 1.3.0 does not build them)."""

from __future__ import annotations

import math

import numpy as np
import torch.nn.functional as F

from qfx.hls.ops import Bounds, Op, attrs, register
from qfx.hls.ops.matmul import check_constant_weights
from qfx.hls.rtl.arrays import array, windows


def spatial(node, model) -> int:
    """Number of spatial dimensions, from the weight's shape [C_out, C_in/group, *kernel]."""
    return len(model.get_tensor_shape(node.input[1])) - 2


@register("Conv")
class Conv(Op):
    defaults = {
        "kernel_shape": lambda node, model: list(model.get_tensor_shape(node.input[1])[2:]),
        "strides": lambda node, model: [1] * spatial(node, model),
        "pads": lambda node, model: [0] * 2 * spatial(node, model),
        "dilations": lambda node, model: [1] * spatial(node, model),
        "group": 1,
        "auto_pad": "NOTSET",
    }

    def check(self, node, graph):
        check_constant_weights(node, graph)
        a = attrs(node)
        if a["auto_pad"] != "NOTSET":
            raise ValueError(f"node {node.name}: Conv auto_pad={a['auto_pad']} is not supported; write explicit pads")
        if len(a["kernel_shape"]) not in (1, 2):
            raise ValueError(f"node {node.name}: {len(a['kernel_shape'])}-D Conv is not supported (1-D and 2-D are)")

    def hls4ml_check(self, node, graph):
        a = attrs(node)
        if any(d != 1 for d in a["dilations"]) or int(a["group"]) != 1:
            raise ValueError(
                f"node {node.name}: Conv with dilations {list(a['dilations'])} and group {a['group']} is not "
                "converted: hls4ml 1.3.0 reads neither (it would build an undilated, ungrouped convolution)"
            )

    def emulate(self, node, args, emu):
        a = attrs(node)
        x, w = args[0], args[1]
        b = args[2] if len(args) > 2 else None
        nd = w.dim() - 2
        pads = list(a["pads"])
        x = F.pad(x, [p for i in reversed(range(nd)) for p in (pads[i], pads[i + nd])])
        fn = F.conv1d if nd == 1 else F.conv2d
        return fn(x, w, b, list(a["strides"]), 0, list(a["dilations"]), int(a["group"]))

    def trace(self, node, args, tracer):
        """Each output position is a constant matrix-vector product over the window's valid inputs
        (padding reads zeros, so its weight rows drop out)."""
        a = attrs(node)
        x, w = args[0], np.asarray(args[1])
        b = args[2] if len(args) > 2 else None
        nd = w.ndim - 2
        group = int(a["group"])
        idx = windows(tuple(x.shape[1:]), list(w.shape[2:]), list(a["strides"]), list(a["pads"]), list(a["dilations"]))
        positions = idx.shape[:nd]
        c_in, c_out = w.shape[1], w.shape[0]
        per_group = c_out // group
        flat = np.ravel(x._vars)
        wc = tracer.constant(w, node.name)
        out = np.empty((c_out, *positions), dtype=object)
        for pos in np.ndindex(*positions):
            for g in range(group):
                window = idx[pos][g * c_in : (g + 1) * c_in].reshape(-1)
                valid = np.flatnonzero(window >= 0)
                wg = wc[g * per_group : (g + 1) * per_group].reshape(per_group, -1).T[valid]
                y = array(flat[window[valid]]) @ wg
                if b is not None:
                    y = y + b[g * per_group : (g + 1) * per_group]
                out[(slice(g * per_group, (g + 1) * per_group), *pos)] = y._vars
        return array(out[None])

    def bounds(self, node, inputs, graph):
        w = graph.constant(node.input[1])
        if inputs[0] is None or w is None:
            return None
        y = inputs[0].dot(w.reshape(len(w), -1).T)
        bias = graph.constant(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        return y if bias is None else y + Bounds.of(bias)

    def features(self, node, graph):
        w = graph.constant(node.input[1])
        return {
            "type": "conv",
            "n_in": int(w.shape[1]),
            "n_out": int(w.shape[0]),
            "kernel": int(np.prod(w.shape[2:])),
            "positions": math.prod(graph.shape(node.output[0])[2:]) or 1,
            "weight_bits": graph.bits(node.input[1]),
            "act_bits": graph.bits(node.input[0]),
            "k_hot": graph.k_hot(node.input[1]),
        }
