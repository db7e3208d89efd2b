"""QONNX `Trunc` (Brevitas's truncation, e.g. after average pooling): lowered to the Quant nodes that
compute it exactly, so emulation, RTL and hls4ml need nothing of their own.

qonnx's executor defines it (custom_op/general/trunc.py): q = round(x / scale) (half to even), then
y = rounding_mode(q / 2^k), and
- v1 (5 inputs: x, scale, zero point, input bits, output bits; k = input - output bits): no clamp, and
  the result is y * scale, i.e. the value divided by 2^k;
- v2 (6 inputs: ..., input bits, output scale, output bits; 2^k = output scale / scale): y clamped to the
  output bits (signed, narrow) and the result is y * output scale.
Both are the cast of x to the input grid (RND_CONV) followed by a cast to the output grid with the
node's rounding mode (and for v1 a Mul by 2^-k); the first cast saturates at the input bits, which the
file declares the input has.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import helper

from qfx.fixed import FixedFormat
from qfx.hls.ops import Op, attrs, register
from qfx.hls.ops.quant import ROUNDING_FROM_QONNX, make_quant


def _scalar(model, node, index: int, role: str) -> float:
    value = model.get_initializer(node.input[index]) if len(node.input) > index else None
    if value is None or np.size(value) != 1:
        raise ValueError(f"node {node.name}: the {role} of a Trunc node must be one constant")
    return float(np.asarray(value).item())


@register("Trunc")
class Trunc(Op):
    defaults = {"rounding_mode": "FLOOR"}

    def lower(self, node, model):
        if len(node.input) not in (5, 6):
            raise ValueError(f"node {node.name}: Trunc takes 5 inputs (v1) or 6 (v2), not {len(node.input)}")
        v2 = len(node.input) == 6
        scale = _scalar(model, node, 1, "scale")
        if _scalar(model, node, 2, "zero point") != 0:
            raise ValueError(f"node {node.name}: zero point must be 0 for fixed point")
        in_bits = _scalar(model, node, 3, "input bit width")
        out_bits = _scalar(model, node, 5 if v2 else 4, "output bit width")
        shift = math.log2(_scalar(model, node, 4, "output scale") / scale) if v2 else in_bits - out_bits
        if shift != round(shift):
            raise ValueError(f"node {node.name}: the output scale is not the input scale times a power of two")
        a = attrs(node)
        signed = bool(a.get("signed", 1))
        frac = -math.log2(scale)
        narrow = bool(a.get("narrow", 0)) and v2 and signed
        rounding = ROUNDING_FROM_QONNX.get(str(a.get("rounding_mode", "FLOOR")).upper())
        if rounding is None or frac != round(frac):
            raise ValueError(f"node {node.name}: a scale of 2^-k and a rounding mode of ap_fixed are needed, not "
                             f"scale {scale} and {a.get('rounding_mode')}")  # fmt: skip
        # the input cast onto its grid (RND_CONV: qonnx's np.round), then onto the output grid
        grid = FixedFormat(int(in_bits), int(in_bits - frac), signed, "RND_CONV", "SAT")
        cast = FixedFormat(
            int(out_bits), int(out_bits - frac + shift), signed, rounding, "SAT_SYM" if narrow else "SAT"
        )
        on_grid, cast_out = f"{node.name}_grid", (node.output[0] if v2 else f"{node.name}_cast")
        nodes = [
            make_quant(model, node.input[0], on_grid, f"{node.name}_grid", grid),
            make_quant(model, on_grid, cast_out, f"{node.name}_cast", cast),
        ]
        if not v2:  # v1 keeps the input's scale: the value divided by 2^k
            model.set_initializer(f"{node.name}_k", np.array(2.0**-shift, dtype=np.float32))
            nodes.append(
                helper.make_node("Mul", [cast_out, f"{node.name}_k"], [node.output[0]], name=f"{node.name}_scale")
            )
        return nodes
