"""`MatMul` by a constant matrix: a dense layer without bias."""

from __future__ import annotations

import torch

from qfx.hls.ops import Op, register


def dense_features(graph, x: str, w: str, n_in: int, n_out: int) -> dict:
    """A dense layer as the surrogate describes it."""
    return {
        "type": "dense",
        "n_in": n_in,
        "n_out": n_out,
        "weight_bits": graph.bits(w),
        "act_bits": graph.bits(x),
        "k_hot": graph.k_hot(w),
    }


def check_constant_weights(node, graph) -> None:
    if not graph.is_constant(node.input[1]):
        raise ValueError(f"node {node.name}: {node.op_type} needs constant weights (a product of two variables)")


@register("MatMul")
class MatMul(Op):
    def check(self, node, graph):
        check_constant_weights(node, graph)

    def emulate(self, node, args, emu):
        return torch.matmul(args[0], args[1])

    def trace(self, node, args, tracer):
        return tracer.matmul(args[0], args[1], node.name)

    def bounds(self, node, inputs, graph):
        w = graph.constant(node.input[1])
        return inputs[0].dot(w) if inputs[0] is not None and w is not None else None

    def features(self, node, graph):
        w = graph.constant(node.input[1])
        return dense_features(graph, node.input[0], node.input[1], int(w.shape[0]), int(w.shape[1]))
