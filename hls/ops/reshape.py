"""`Reshape` that keeps the batch first: the graph's batch of 1 stands for any batch."""

from __future__ import annotations

import math

import numpy as np

from qfx.hls.ops import Op, register


def target(shape: list[int], dims: np.ndarray) -> list[int]:
    """ONNX's reshape target for an input of `shape` (0 copies a dimension, -1 is inferred), batch first."""
    out = [shape[i] if d == 0 else int(d) for i, d in enumerate(dims.astype(np.int64).tolist())]
    out[0] = shape[0]
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        out[out.index(-1)] = math.prod(shape) // known
    return out


@register("Reshape")
class Reshape(Op):
    moves_values = True
    defaults = {"allowzero": 0}
    hls4ml_quantize_constants = False

    def check(self, node, graph):
        dims = graph.initializer(node.input[1])
        if dims is None:
            raise ValueError(f"node {node.name}: Reshape needs a constant shape")
        if dims.size == 0 or int(dims[0]) not in (0, 1, -1):
            raise ValueError(
                f"node {node.name}: Reshape to {dims.astype(int).tolist()} mixes the batch dimension into the data"
            )
        shape = graph.shape(node.input[0])
        out = graph.shape(node.output[0])
        if out[0] != shape[0] or math.prod(out[1:]) != math.prod(shape[1:]):
            raise ValueError(
                f"node {node.name}: Reshape of {shape} to {dims.astype(int).tolist()} mixes the batch dimension "
                "into the data"
            )

    def emulate(self, node, args, emu):
        return args[0].reshape(target(list(args[0].shape), args[1].numpy()))

    def trace(self, node, args, tracer):
        return args[0].reshape(*target(list(args[0].shape), np.asarray(args[1])))
