"""`Mul` by a constant: a scale (exact when the constant is)."""

from __future__ import annotations

from qfx.hls.ops import Op, register


@register("Mul")
class Mul(Op):
    def check(self, node, graph):
        if not any(graph.is_constant(t) for t in node.input):
            raise ValueError(f"node {node.name}: Mul of two variables is not supported; one operand must be constant")

    def emulate(self, node, args, emu):
        return args[0] * args[1]

    def bounds(self, node, inputs, graph):
        x, c = (inputs[1], node.input[0]) if graph.is_constant(node.input[0]) else (inputs[0], node.input[1])
        return None if x is None or not graph.is_constant(c) else x.scaled(graph.constant(c))

    def trace(self, node, args, tracer):
        x, c = args if tracer.is_variable(args[0]) else args[::-1]
        return tracer.scale(x, c, node.name)
