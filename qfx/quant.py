"""Trainable fixed-point quantizers: the total width W is the user's, the binary point is learned.

The integer bits I are a continuous parameter rounded with a straight-through estimator.  The LSB is
s = 2^(I-W); the output is s * q(x/s) with q the exact ap_fixed rounding and overflow.  Gradients
follow LSQ (Esser et al., 2020): d out/dx = 1 inside the range and 0 where the value overflowed;
d out/ds = q - x/s inside and q outside, so the binary point moves to balance rounding noise against
clipping, as in QFX (trainable binary point).  d s/dI = s ln 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from qfx.exact import union_format
from qfx.fixed import FixedFormat, quantize_int, validate_format


@dataclass(frozen=True)
class Spec:
    """What a tensor's quantizer should be: width, signedness, modes, granularity, K-hot limit."""

    width: int
    signed: bool = True
    rounding: str = "RND_CONV"
    overflow: str = "SAT"
    per_channel: bool = False
    k_hot: int | None = None

    def __post_init__(self) -> None:
        validate_format(self.width, 0, self.signed, self.rounding, self.overflow)
        if self.k_hot is not None and not 1 <= self.k_hot <= self.width:
            raise ValueError(f"k_hot={self.k_hot!r} must be in 1..width ({self.width})")

    @classmethod
    def of(cls, value: Spec | int, **defaults: object) -> Spec:
        return value if isinstance(value, Spec) else cls(value, **defaults)  # type: ignore[arg-type]

    def build(self, channels: int = 1, axis: int = 0) -> FixedQuantizer:
        kwargs = {
            "signed": self.signed,
            "rounding": self.rounding,
            "overflow": self.overflow,
            "channels": channels if self.per_channel else 1,
            "axis": axis,
        }
        if self.k_hot is not None:
            return KHotQuantizer(self.width, self.k_hot, **kwargs)
        return FixedQuantizer(self.width, **kwargs)


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        return grad


def tag(t: torch.Tensor, fmt: FixedFormat) -> torch.Tensor:
    """Mark a tensor as holding values of `fmt`, so the next layer can derive exact formats from it."""
    t.qfx_format = fmt  # type: ignore[attr-defined]
    return t


def format_of(t: torch.Tensor, where: str) -> FixedFormat:
    fmt = getattr(t, "qfx_format", None)
    if fmt is None:
        raise ValueError(
            f"{where}: input is not a fixed-point tensor; put a qfx.nn.Quant (or a layer with a result "
            "quantizer) in front of it"
        )
    return fmt


class FixedQuantizer(nn.Module):
    """ap_fixed<W, I> quantization with I learned, per tensor or per channel along `axis`."""

    def __init__(
        self,
        width: int,
        signed: bool = True,
        rounding: str = "RND_CONV",
        overflow: str = "SAT",
        channels: int = 1,
        axis: int = 0,
        int_bits: float | None = None,
    ) -> None:
        super().__init__()
        validate_format(width, 0, signed, rounding, overflow)
        self.width, self.signed, self.rounding, self.overflow = width, signed, rounding, overflow
        self.axis = axis
        self.code_range = FixedFormat(width, 0, signed)  # the integer codes, whatever the binary point
        self.int_bits = nn.Parameter(torch.full((channels,), float(int_bits or 0.0)))
        # Until calibrated, the first batch sets I so that its largest magnitude just fits.
        self.register_buffer("calibrated", torch.tensor(int_bits is not None))

    def extra_repr(self) -> str:
        channels = len(self.int_bits)
        return f"width={self.width}, signed={self.signed}, {self.rounding}, {self.overflow}, channels={channels}"

    def _channel_view(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if t.numel() == 1:
            return t.reshape(())
        shape = [1] * x.dim()
        shape[self.axis] = -1
        return t.reshape(shape)

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        """Set I from the data: the smallest integer bits that hold max|x| (per channel)."""
        if len(self.int_bits) == 1:
            peak = x.detach().abs().max().reshape(1)
        else:
            dims = [d for d in range(x.dim()) if d != self.axis % x.dim()]
            peak = x.detach().abs().amax(dim=dims)
        # Signed W bits with I integer bits hold up to 2^(I-1); unsigned up to 2^I.
        need = torch.ceil(torch.log2(peak.clamp(min=2.0**-20).double())) + (1 if self.signed else 0)
        self.int_bits.copy_(need.to(self.int_bits.dtype))
        self.calibrated.fill_(True)

    def integer_bits(self) -> torch.Tensor:
        """Learned I per channel, as integers (straight-through in training)."""
        return _RoundSTE.apply(self.int_bits)

    def codes(self, v: torch.Tensor) -> torch.Tensor:
        """The integer code the hardware stores for v given in LSB units."""
        return quantize_int(v, self.width, self.signed, self.rounding, self.overflow)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.calibrated):
            self.calibrate(x)
        lsb = self._channel_view(torch.exp2(self.integer_bits() - self.width), x).to(x.dtype)
        v = x / lsb
        q = self.codes(v.detach())
        lo, hi = self.code_range.min_int, self.code_range.max_int
        overflowed = (v.detach() < lo - 0.5) | (v.detach() > hi + 0.5)
        inside = v + (q - v).detach()
        out = lsb * torch.where(overflowed, q, inside)
        return tag(out, self.format)

    def formats(self) -> list[FixedFormat]:
        """The learned format of each channel."""
        bits = torch.round(self.int_bits.detach()).to(torch.int64).tolist()
        return [FixedFormat(self.width, int(i), self.signed, self.rounding, self.overflow) for i in bits]

    @property
    def format(self) -> FixedFormat:
        """One ap_fixed type for the whole tensor: exact for every channel's values."""
        formats = self.formats()
        if len(set(formats)) == 1:
            return formats[0]
        return union_format(formats).with_modes(self.rounding, self.overflow)


class KHotQuantizer(FixedQuantizer):
    """Multiplier-free weights: each code has at most K nonzero signed binary digits (K=1: +-2^a,
    K=2: +-2^a +- 2^b), so a multiply becomes K shifts and K-1 adds.

    Digits are chosen greedily, most significant first: each is the power of two nearest the
    remaining residual (ties to the larger), kept only while the partial sum stays in range.
    """

    def __init__(self, width: int, k: int, **kwargs: object) -> None:
        super().__init__(width, **kwargs)  # type: ignore[arg-type]
        self.k = k

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, k_hot={self.k}"

    def codes(self, v: torch.Tensor) -> torch.Tensor:
        lo, hi = float(self.code_range.min_int), float(self.code_range.max_int)
        target = quantize_int(v, self.width, self.signed, self.rounding, "SAT")
        acc = torch.zeros_like(target)
        top = self.width - 2 if self.signed else self.width - 1
        for _ in range(self.k):
            residual = target - acc
            mag = residual.abs()
            # Nearest power of two 2^e to mag: below 2^e * 1.5 keep e = floor(log2 mag), else e + 1.
            e = torch.floor(torch.log2(mag.clamp(min=1.0)))
            e = e + (mag >= 1.5 * torch.exp2(e)).to(e.dtype)
            e = e.clamp(max=top)
            step = torch.sign(residual) * torch.exp2(e)
            step = torch.where(mag < 0.5, torch.zeros_like(step), step)
            # Halve the step until the partial sum fits (at most `width` halvings are ever needed).
            for _ in range(self.width):
                bad = ((acc + step) > hi) | ((acc + step) < lo)
                if not bool(bad.any()):
                    break
                step = torch.where(bad & (step.abs() > 1), step / 2, torch.where(bad, torch.zeros_like(step), step))
            acc = acc + step
        return acc

    @staticmethod
    def nonzero_digits(codes: torch.Tensor) -> torch.Tensor:
        """Number of nonzero digits in the canonical signed-digit form of each integer code."""
        n = codes.abs().to(torch.int64)
        count = torch.zeros_like(n)
        while bool((n != 0).any()):
            odd = (n & 1) == 1
            # CSD: a run ...11 is rewritten as 10..0-1, so an odd n ending in 11 takes digit -1.
            digit = torch.where(odd, 2 - (n & 3), torch.zeros_like(n))
            count += (digit != 0).to(torch.int64)
            n = (n - digit) >> 1
        return count
