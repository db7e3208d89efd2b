"""Table-based nonlinearities (Sigmoid, Tanh, Softmax): estimated, not yet converted exactly
(hls4ml computes them from lookup tables that the emulation does not reproduce yet)."""

from __future__ import annotations

from qfx.hls.ops import Op, register


class TableActivation(Op):
    exact = False

    def features(self, node, graph):
        size = graph.size(node.output[0])
        return {"type": "activation", "n_in": size, "n_out": size, "act_bits": graph.bits(node.input[0])}


for _op in ("Sigmoid", "Tanh", "Softmax"):
    register(_op)(type(_op, (TableActivation,), {}))
