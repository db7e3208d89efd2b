"""da4ml's symbolic fixed-point arrays as the op modules use them: the hardware configuration, ap_fixed
formats as da4ml's (sign, integer, fraction) triples, exact casts and sliding windows."""

from __future__ import annotations

import math

import numpy as np
from da4ml.trace import FixedVariable, FixedVariableArray, HWConfig

from qfx.fixed import FixedFormat

# da4ml quantizes with TRN/RND and WRAP/SAT/SAT_SYM; RND_CONV is built from those below.
RTL_ROUNDING = ("TRN", "RND", "RND_CONV")
RTL_OVERFLOW = ("WRAP", "SAT", "SAT_SYM")
HWCONF = HWConfig(1, -1, -1)


def kif(fmt: FixedFormat) -> tuple[int, int, int]:
    """ap_fixed<W,I> as da4ml's (sign bit, integer bits without sign, fractional bits)."""
    k = int(fmt.signed)
    return k, fmt.int_bits - k, fmt.width - fmt.int_bits


def array(values: np.ndarray) -> FixedVariableArray:
    """An object array of FixedVariables as one symbolic array."""
    return FixedVariableArray(values, hwconf=HWCONF)


def _round(v: FixedVariable, rounding: str, f: int) -> FixedVariable:
    """v shifted so that truncating it to f fractional bits rounds as `rounding` does."""
    f0 = v.kif[2]
    if f0 <= f or rounding == "TRN":
        return v
    if rounding == "RND":
        return v + 2.0 ** (-f - 1)
    # RND_CONV, round half to even, from truncation: add half an LSB less one input LSB, plus one input
    # LSB when the kept LSB is odd; truncation then sends ties to the even neighbour and the rest to nearest.
    odd = v.quantize(0, 1 - f, f, "WRAP", "TRN")  # the kept LSB, as 0 or 2^-f
    return v + (2.0 ** (-f - 1) - 2.0**-f0) + odd * 2.0 ** (f - f0)


def _quantize_scalar(v: FixedVariable, fmt: FixedFormat) -> FixedVariable:
    k, i, f = kif(fmt)
    v = _round(v, fmt.rounding, f)
    if fmt.overflow == "WRAP" and not fmt.signed and v.low < 0:
        # da4ml narrows an unsigned wrap of a signed value to one bit above the value's range, dropping the
        # sign extension (ap_ufixed<6,7> of -8 is 120, not 8); adding 2^i to negatives is the same modulo
        # 2^i and keeps the range honest.
        v = v + v.is_negative() * 2.0**i
    return v.quantize(k, i, f, fmt.overflow, "TRN")


def quantize(x: FixedVariableArray, fmt: FixedFormat, where: str) -> FixedVariableArray:
    """The ap_fixed cast `fmt` on every element, exactly (rounding first, then overflow, as ap_fixed)."""
    if fmt.rounding not in RTL_ROUNDING or fmt.overflow not in RTL_OVERFLOW:
        raise ValueError(
            f"node {where}: {fmt} has no RTL: rounding must be one of {', '.join(RTL_ROUNDING)} "
            f"and overflow one of {', '.join(RTL_OVERFLOW)}"
        )
    out = np.array([_quantize_scalar(v, fmt) for v in np.ravel(x._vars)], dtype=object)
    return array(out.reshape(x.shape))


def windows(
    shape: tuple[int, ...], kernel: list[int], strides: list[int], pads: list[int], dilations: list[int]
) -> np.ndarray:
    """Flat input indices of every sliding window: [positions..., C, *kernel], -1 where padding is read.

    `shape` is one sample's [C, *spatial]; pads are ONNX's [begin..., end...].
    """
    nd = len(kernel)
    index = np.arange(math.prod(shape)).reshape(shape)
    index = np.pad(index, [(0, 0)] + [(pads[d], pads[d + nd]) for d in range(nd)], constant_values=-1)
    out_sizes = [(index.shape[1 + d] - dilations[d] * (kernel[d] - 1) - 1) // strides[d] + 1 for d in range(nd)]
    rows = []
    for pos in np.ndindex(*out_sizes):
        sl = tuple(
            slice(pos[d] * strides[d], pos[d] * strides[d] + dilations[d] * (kernel[d] - 1) + 1, dilations[d])
            for d in range(nd)
        )
        rows.append(index[(slice(None), *sl)])
    return np.stack(rows).reshape(*out_sizes, shape[0], *kernel)
