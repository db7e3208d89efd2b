"""Table-based nonlinearities (Sigmoid, Tanh, Softmax): estimated, not yet converted exactly
(hls4ml computes them from lookup tables that the emulation does not reproduce yet)."""

from __future__ import annotations

from qfx.hls.ops import Op, layer_features, register


class TableActivation(Op):
    exact = False

    def features(self, node, graph):
        return layer_features(node, graph, "activation")


for _op in ("Sigmoid", "Tanh", "Softmax"):
    register(_op)(type(_op, (TableActivation,), {}))
