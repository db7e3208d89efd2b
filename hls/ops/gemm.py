"""`Gemm`: Y = X @ W (+ C), with transB; alpha, beta other than 1 and transA are refused."""

from __future__ import annotations

from qfx.hls.ops import Bounds, Op, attrs, register
from qfx.hls.ops.matmul import check_constant_weights, dense_features


@register("Gemm")
class Gemm(Op):
    defaults = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}

    def check(self, node, graph):
        a = attrs(node)
        if a["transA"] or a["alpha"] != 1.0 or a["beta"] != 1.0:
            raise ValueError(
                f"node {node.name}: Gemm with transA={a['transA']}, alpha={a['alpha']}, beta={a['beta']} is not "
                "supported; fold alpha and beta into the weights and bias"
            )
        check_constant_weights(node, graph)

    def emulate(self, node, args, emu):
        w = args[1].T if attrs(node)["transB"] else args[1]
        y = args[0] @ w
        return y + args[2] if len(args) > 2 and args[2] is not None else y

    def trace(self, node, args, tracer):
        w = args[1].T if attrs(node)["transB"] else args[1]
        y = tracer.matmul(args[0], w, node.name)
        return y + args[2] if len(args) > 2 and args[2] is not None else y

    def bounds(self, node, inputs, graph):
        w = graph.constant(node.input[1])
        if inputs[0] is None or w is None:
            return None
        y = inputs[0].dot(w.T if attrs(node)["transB"] else w)
        bias = graph.constant(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        return y if bias is None else y + Bounds.of(bias)

    def features(self, node, graph):
        shape = graph.constant(node.input[1]).shape
        n_in, n_out = (shape[1], shape[0]) if attrs(node)["transB"] else shape
        return dense_features(graph, node.input[0], node.input[1], int(n_in), int(n_out))
