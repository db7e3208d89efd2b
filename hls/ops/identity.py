"""`Identity`: nothing to compute."""

from __future__ import annotations

from qfx.hls.ops import Op, register


@register("Identity")
class Identity(Op):
    moves_values = True
    hls4ml_quantize_constants = False

    def emulate(self, node, args, emu):
        return args[0]

    def trace(self, node, args, tracer):
        return args[0]
