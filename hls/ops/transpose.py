"""`Transpose` that keeps the batch first."""

from __future__ import annotations

from qfx.hls.ops import Op, attrs, register


@register("Transpose")
class Transpose(Op):
    moves_values = True
    defaults = {"perm": lambda node, model: list(reversed(range(len(model.get_tensor_shape(node.input[0])))))}
    hls4ml_quantize_constants = False

    def check(self, node, graph):
        perm = list(attrs(node)["perm"])
        if perm[0] != 0:
            raise ValueError(f"node {node.name}: Transpose perm {perm} moves the batch dimension")

    def emulate(self, node, args, emu):
        return args[0].permute(*attrs(node)["perm"])

    def trace(self, node, args, tracer):
        return args[0].transpose(list(attrs(node)["perm"]))
