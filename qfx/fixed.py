"""Bit-exact emulation of Xilinx ``ap_fixed<W,I,Q,O>`` / ``ap_ufixed`` quantization in PyTorch.

The rules follow the conversion from ``double`` in Xilinx's ``ap_fixed_base.h`` (shipped with hls4ml):
the value is scaled to integer units of the LSB, rounded by the quantization mode (which only looks at
the first dropped bit and whether any lower dropped bit is set), then fitted into W bits by the
overflow mode.  All arithmetic is done on float64 integers, which is exact for W <= 32.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import torch

ROUNDING_MODES = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_MIN_INF", "RND_INF", "RND_CONV")
OVERFLOW_MODES = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM", "WRAP_SM")
MAX_WIDTH = 32
# Accumulators (derived, never quantized from user data) may be wider; float64 holds 53-bit integers.
MAX_WIDE_WIDTH = 53
# float64 keeps products and sums of 32-bit operands exact only this far; beyond it int_bits makes no
# sense for hardware either, and the Xilinx header misreads subnormal doubles (it sets their hidden bit).
MAX_ABS_INT_BITS = 256


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(allowed)}")
    return value


def validate_format(
    width: int, int_bits: int, signed: bool, rounding: str, overflow: str, max_width: int = MAX_WIDTH
) -> None:
    """Raise ValueError naming the argument when (W, I, signed, Q, O) is not a legal ap_fixed type."""
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= max_width:
        raise ValueError(f"width={width!r} must be an integer in 1..{max_width}")
    if isinstance(int_bits, bool) or not isinstance(int_bits, int) or abs(int_bits) > MAX_ABS_INT_BITS:
        raise ValueError(f"int_bits={int_bits!r} must be an integer in -{MAX_ABS_INT_BITS}..{MAX_ABS_INT_BITS}")
    _check_choice("rounding", rounding, ROUNDING_MODES)
    _check_choice("overflow", overflow, OVERFLOW_MODES)
    if overflow == "WRAP_SM" and not signed:
        # ap_fixed_base::report() aborts with "ap_ufxied<...> cannot support AP_WRAP_SM."
        raise ValueError("overflow='WRAP_SM' needs signed=True: ap_ufixed rejects AP_WRAP_SM")


@dataclass(frozen=True)
class FixedFormat:
    """An ap_fixed type: total width W, integer bits I (sign included), signedness, Q and O modes.

    `wide=True` admits up to 53 bits, for derived accumulator formats that no user value is cast to.
    """

    width: int
    int_bits: int
    signed: bool = True
    rounding: str = "TRN"
    overflow: str = "WRAP"
    wide: bool = field(default=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        limit = MAX_WIDE_WIDTH if self.wide else MAX_WIDTH
        validate_format(self.width, self.int_bits, self.signed, self.rounding, self.overflow, limit)

    @property
    def frac_bits(self) -> int:
        return self.width - self.int_bits

    @property
    def lsb(self) -> float:
        return math.ldexp(1.0, -self.frac_bits)

    @property
    def min_int(self) -> int:
        """Smallest representable value in LSB units."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def min_value(self) -> float:
        return math.ldexp(self.min_int, -self.frac_bits)

    @property
    def max_value(self) -> float:
        return math.ldexp(self.max_int, -self.frac_bits)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        return _quantize(x, self.width, self.int_bits, self.signed, self.rounding, self.overflow)

    def with_modes(self, rounding: str | None = None, overflow: str | None = None) -> FixedFormat:
        return replace(self, rounding=rounding or self.rounding, overflow=overflow or self.overflow)

    def contains(self, other: FixedFormat) -> bool:
        """True when every value of `other` is exactly representable here (so a cast is lossless)."""
        if other.frac_bits > self.frac_bits:
            return False
        lo_ok = other.min_int == 0 or (self.signed and self.min_value <= other.min_value)
        return lo_ok and self.max_value >= other.max_value

    def __str__(self) -> str:
        base = "ap_fixed" if self.signed else "ap_ufixed"
        args = [str(self.width), str(self.int_bits)]
        # Trailing defaults (AP_TRN, AP_WRAP) are omitted, as a C++ programmer writes the type.
        if self.rounding != "TRN" or self.overflow != "WRAP":
            args.append(f"AP_{self.rounding}")
        if self.overflow != "WRAP":
            args.append(f"AP_{self.overflow}")
        return f"{base}<{','.join(args)}>"

    def to_hls4ml(self) -> str:
        """The precision string hls4ml's config takes, e.g. ``fixed<8,3,RND_CONV,SAT>``."""
        base = "fixed" if self.signed else "ufixed"
        return f"{base}<{self.width},{self.int_bits},{self.rounding},{self.overflow}>"

    @classmethod
    def parse(cls, text: str) -> FixedFormat:
        """Read ``ap_fixed<8,3,AP_RND,AP_SAT>``, ``ap_ufixed<4,0>`` or hls4ml's ``fixed<8,3,RND,SAT>``."""
        m = re.fullmatch(r"\s*(ap_)?(u?)fixed\s*<([^>]*)>\s*", text)
        if not m:
            raise ValueError(f"format {text!r} is not of the form ap_fixed<W,I[,Q[,O]]>")
        args = [a.strip() for a in m.group(3).split(",")]
        if not 2 <= len(args) <= 5 or (len(args) == 5 and args[4] != "0"):
            raise ValueError(f"format {text!r} needs W,I[,Q[,O]] (saturation bits N must be 0)")
        try:
            width, int_bits = int(args[0]), int(args[1])
        except ValueError:
            raise ValueError(f"format {text!r}: W and I must be integers") from None
        modes = [a.removeprefix("AP_") for a in args[2:4]]
        rounding = modes[0] if modes else "TRN"
        overflow = modes[1] if len(modes) > 1 else "WRAP"
        return cls(width, int_bits, m.group(2) != "u", rounding, overflow)


def _round_half(v: torch.Tensor, floor: torch.Tensor, rounding: str) -> torch.Tensor:
    """Integer result of rounding v (float64) whose floor is given, per ap_fixed's quantization_adjust.

    qb is the first dropped bit (frac >= 1/2), r whether any lower dropped bit is set (frac != 1/2).
    """
    frac = v - floor  # exact: v and floor share the binade or floor is 0
    qb = frac >= 0.5
    r = (frac != 0.5) & (frac != 0.0)
    neg = v < 0
    if rounding == "TRN":
        inc = torch.zeros_like(qb)
    elif rounding == "TRN_ZERO":
        inc = neg & (frac != 0.0)
    elif rounding == "RND":
        inc = qb
    elif rounding == "RND_ZERO":
        inc = qb & (neg | r)
    elif rounding == "RND_MIN_INF":
        inc = qb & r
    elif rounding == "RND_INF":
        inc = qb & (~neg | r)
    else:  # RND_CONV: ties to even
        odd = torch.fmod(floor, 2.0) != 0
        inc = qb & (odd | r)
    return floor + inc.to(v.dtype)


def quantize_int(v: torch.Tensor, width: int, signed: bool, rounding: str, overflow: str) -> torch.Tensor:
    """Round v (a real value in LSB units) to the integer ap_fixed stores, then apply the overflow mode.

    Tensor in, same dtype out; exact in float64.  Callers have already mapped inf to finite values.
    """
    floor = torch.floor(v)
    q = _round_half(v, floor, rounding)
    lo = -(2.0 ** (width - 1)) if signed else 0.0
    hi = 2.0 ** (width - 1) - 1 if signed else 2.0**width - 1
    if overflow in ("SAT", "SAT_SYM", "SAT_ZERO"):
        if overflow == "SAT_SYM" and signed and width > 1:
            # ap_fixed maps the most negative code 100..0 to 100..01 as well (symmetric range).
            lo = lo + 1
        if overflow == "SAT_ZERO":
            return torch.where((q < lo) | (q > hi), torch.zeros_like(q), q)
        return torch.clamp(q, lo, hi)
    modulus = 2.0**width
    bits = torch.fmod(q, modulus)  # fmod is exact in IEEE arithmetic
    bits = torch.where(bits < 0, bits + modulus, bits)
    wrapped = torch.where(bits > hi, bits - modulus, bits)
    if overflow == "WRAP":
        return wrapped
    # WRAP_SM: on overflow, when the bit above the kept word (taken before rounding) differs from the
    # kept sign bit, ap_fixed inverts the word (~v == -v - 1) and sets the sign bit to that dropped
    # bit, which the inversion already did.
    above = torch.fmod(torch.floor(floor / modulus), 2.0) != 0
    flip = (above != (wrapped < 0)) & ((q < lo) | (q > hi))
    return torch.where(flip, -wrapped - 1, wrapped)


def quantize(
    x: torch.Tensor,
    width: int,
    int_bits: int,
    signed: bool = True,
    rounding: str = "TRN",
    overflow: str = "WRAP",
) -> torch.Tensor:
    """Real values that ``ap_[u]fixed<width,int_bits,AP_<rounding>,AP_<overflow>>`` holds after
    assignment from each double in x.  float64 in, float64 out, exact.

    NaN raises ValueError (ap_fixed has no NaN).  +-inf is read as the header reads it, as +-2^1024:
    the SAT modes saturate it, WRAP and WRAP_SM give 0 (all kept bits of 2^1024 are zero).
    """
    validate_format(width, int_bits, signed, rounding, overflow)
    return _quantize(x, width, int_bits, signed, rounding, overflow)


def _quantize(x: torch.Tensor, width: int, int_bits: int, signed: bool, rounding: str, overflow: str) -> torch.Tensor:
    x = torch.as_tensor(x).to(torch.float64)
    if torch.isnan(x).any():
        raise ValueError("x contains NaN, which has no ap_fixed value")
    frac_bits = width - int_bits
    if overflow in ("WRAP", "WRAP_SM"):
        # From 2^(int_bits+54) up every kept bit, and the bit above, is zero: the result is 0.
        x = torch.where(x.abs() >= 2.0 ** (int_bits + 54), torch.zeros_like(x), x)
    else:
        # Far beyond the range the result no longer depends on the magnitude; clamp before scaling.
        limit = 2.0 ** (int_bits + 2)
        x = x.clamp(-limit, limit)
    v = torch.ldexp(x, torch.tensor(frac_bits, dtype=torch.float64))
    # Scaling down can flush a tiny nonzero value to 0; keep its sign with the smallest subnormal
    # so truncation still sends negatives to -1 LSB.
    tiny = torch.tensor(math.ulp(0.0), dtype=torch.float64)
    v = torch.where((v == 0) & (x != 0), torch.copysign(tiny, x), v)
    q = quantize_int(v, width, signed, rounding, overflow)
    return torch.ldexp(q, torch.tensor(-frac_bits, dtype=torch.float64)) + 0.0  # no -0: ap_fixed has none
