"""GlobalAveragePool and GlobalMaxPool: estimated, not yet converted exactly."""

from __future__ import annotations

import math

from qfx.hls.ops import Op, register


class GlobalPool(Op):
    exact = False

    def features(self, node, graph):
        return {
            "type": "pool",
            "n_in": math.prod(graph.shape(node.input[0])[1:]),
            "n_out": graph.size(node.output[0]),
            "act_bits": graph.bits(node.input[0]),
        }


for _op in ("GlobalAveragePool", "GlobalMaxPool"):
    register(_op)(type(_op, (GlobalPool,), {}))
