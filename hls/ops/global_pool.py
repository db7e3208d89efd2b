"""GlobalAveragePool and GlobalMaxPool: estimated, not yet converted exactly."""

from __future__ import annotations

from qfx.hls.ops import Op, layer_features, register


class GlobalPool(Op):
    exact = False

    def features(self, node, graph):
        return layer_features(node, graph, "pool")


for _op in ("GlobalAveragePool", "GlobalMaxPool"):
    register(_op)(type(_op, (GlobalPool,), {}))
