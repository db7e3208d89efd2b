"""Exact result formats of fixed-point arithmetic, so accumulators are derived rather than guessed.

These are the widths an HLS tool needs for a lossless product, sum or sum of n terms (what
``ap_fixed`` operators return before any cast).
"""

from __future__ import annotations

import math

from qfx.fixed import FixedFormat


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
