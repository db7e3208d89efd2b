"""`Flatten` at axis 1: [N, ...] -> [N, prod(...)] (other axes would mix the batch into the data)."""

from __future__ import annotations

from qfx.hls.ops import Op, attrs, register


def _axis(node, rank: int) -> int:
    axis = int(attrs(node)["axis"])
    return axis + rank if axis < 0 else axis


@register("Flatten")
class Flatten(Op):
    moves_values = True
    defaults = {"axis": 1}
    hls4ml_quantize_constants = False

    def check(self, node, graph):
        if _axis(node, len(graph.shape(node.input[0]))) != 1:
            raise ValueError(f"node {node.name}: Flatten axis {attrs(node)['axis']} is not supported; only axis 1")

    def emulate(self, node, args, emu):
        return args[0].reshape(args[0].shape[0], -1)

    def trace(self, node, args, tracer):
        return args[0].reshape(args[0].shape[0], -1)
