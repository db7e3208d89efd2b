"""Exact result formats of fixed-point arithmetic, so accumulators are derived rather than guessed.

These are the widths an HLS tool needs for a lossless product, sum or sum of n terms (what
``ap_fixed`` operators return before any cast).
"""

from __future__ import annotations

import math

import numpy as np

from qfx.fixed import MAX_WIDE_WIDTH, FixedFormat


def _wide(width: int, int_bits: int, signed: bool, where: str) -> FixedFormat:
    try:
        return FixedFormat(width, int_bits, signed, wide=True)
    except ValueError:
        raise ValueError(
            f"{where}: the exact result needs {width} bits, more than the 53 a float64 emulation keeps exact; "
            "narrow the operand formats"
        ) from None


def product_format(a: FixedFormat, b: FixedFormat, where: str = "product") -> FixedFormat:
    """Format of a*b: widths and integer bits add; an unsigned*signed product needs no extra bit."""
    return _wide(a.width + b.width, a.int_bits + b.int_bits, a.signed or b.signed, where)


def sum_format(a: FixedFormat, b: FixedFormat, where: str = "sum") -> FixedFormat:
    """Format of a+b: aligned binary points, one carry bit (and a sign bit if only one is signed)."""
    signed = a.signed or b.signed
    frac = max(a.frac_bits, b.frac_bits)
    # An unsigned operand joining a signed sum needs one more integer bit to stay positive.
    ia = a.int_bits + (signed and not a.signed)
    ib = b.int_bits + (signed and not b.signed)
    int_bits = max(ia, ib) + 1
    return _wide(int_bits + frac, int_bits, signed, where)


def accumulate_format(term: FixedFormat, n: int, where: str = "accumulator") -> FixedFormat:
    """Format of the sum of n terms of one format: ceil(log2 n) carry bits."""
    grow = math.ceil(math.log2(n)) if n > 1 else 0
    return _wide(term.width + grow, term.int_bits + grow, term.signed, where)


def union_format(formats: list[FixedFormat], where: str = "tensor") -> FixedFormat:
    """Narrowest format holding every value of every given format (e.g. per-channel formats)."""
    signed = any(f.signed for f in formats)
    frac = max(f.frac_bits for f in formats)
    int_bits = max(f.int_bits + (signed and not f.signed) for f in formats)
    return _wide(int_bits + frac, int_bits, signed, where)


def exact_format(values: np.ndarray, where: str) -> FixedFormat:
    """Narrowest format holding every value exactly (for constants a model left in float)."""
    v = [float(x) for x in np.asarray(values, dtype=np.float64).ravel()]
    nonzero = [x for x in v if x != 0]
    if not nonzero:
        return FixedFormat(1, 1, False)
    # x = M * 2^(e-53) with M an integer: it needs 53 - e - (trailing zeros of M) fractional bits.
    frac = max(
        53 - e - ((m := int(abs(mm) * 2**53)) & -m).bit_length() + 1 for mm, e in (math.frexp(x) for x in nonzero)
    )
    codes = [int(x * 2.0**frac) for x in v]
    lo, hi = min(codes), max(codes)
    signed = lo < 0
    width = max(max(hi, 0).bit_length() + 1, (-lo - 1).bit_length() + 1) if signed else max(hi.bit_length(), 1)
    if width > MAX_WIDE_WIDTH:
        raise ValueError(f"{where}: holding these constants exactly needs {width} bits; quantize them in the model")
    return FixedFormat(width, width - frac, signed, wide=True)
