"""`MaxPool`: padding reads -inf (ONNX), so only a window's real elements count."""

from __future__ import annotations

from qfx.hls.ops import register
from qfx.hls.ops.pooling import Pool


@register("MaxPool")
class MaxPool(Pool):
    moves_values = True
    pad_value = float("-inf")

    def emulate(self, node, args, emu):
        return self.pool(node, args[0])

    def reduce(self, node, terms, count):
        acc = terms[0]
        for t in terms[1:]:
            acc = acc.max_of(t)
        return acc
