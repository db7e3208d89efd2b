"""`Add`: a bias (one constant operand) or a residual sum of two tensors."""

from __future__ import annotations

from qfx.hls.ops import Bounds, Op, layer_features, register


@register("Add")
class Add(Op):
    def emulate(self, node, args, emu):
        return args[0] + args[1]

    def trace(self, node, args, tracer):
        x, y = args
        return x + y if tracer.is_variable(x) else y + x

    def bounds(self, node, inputs, graph):
        constant = [graph.is_constant(t) for t in node.input]
        terms = [Bounds.of(graph.constant(t)) if c else b for b, t, c in zip(inputs, node.input, constant, strict=True)]
        return None if None in terms else terms[0] + terms[1]

    def features(self, node, graph):
        if any(graph.is_constant(t) for t in node.input):
            return None  # a bias add belongs to its dense layer
        return layer_features(node, graph, "add")
