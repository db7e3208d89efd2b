"""Trainable quantizers: exact forward, calibration, learned binary point, K-hot codes."""

from __future__ import annotations

import pytest
import torch

from qfx.fixed import FixedFormat
from qfx.quant import FixedQuantizer, KHotQuantizer, Spec


def test_quantizer_output_equals_quantize_in_its_learned_format() -> None:
    q = FixedQuantizer(6, rounding="RND", overflow="SAT")
    x = torch.randn(500, dtype=torch.float64) * 3
    y = q(x)
    assert torch.equal(y, q.format.quantize(x))
    assert y.qfx_format == q.format


def test_per_channel_quantizer_uses_each_channels_format() -> None:
    q = FixedQuantizer(5, channels=3, axis=0)
    x = torch.randn(3, 40, dtype=torch.float64) * torch.tensor([[0.1], [1.0], [10.0]], dtype=torch.float64)
    y = q(x)
    for c, fmt in enumerate(q.formats()):
        assert torch.equal(y[c], fmt.quantize(x[c]))
    assert len({f.int_bits for f in q.formats()}) == 3
    assert all(q.format.contains(f) for f in q.formats())


def test_calibration_picks_the_fewest_integer_bits_that_hold_the_peak() -> None:
    q = FixedQuantizer(8)
    q(torch.tensor([0.2, -2.5, 1.0]))
    assert q.format.int_bits == 3  # |x| <= 2.5 needs 2^(I-1) >= 2.5 with a sign bit
    u = FixedQuantizer(8, signed=False)
    u(torch.tensor([0.2, 0.9]))
    assert u.format.int_bits == 0


def test_straight_through_gradient_passes_inside_and_stops_at_saturation() -> None:
    q = FixedQuantizer(4, int_bits=2)  # range [-2, 1.75]
    x = torch.tensor([0.3, 1.0, 5.0, -7.0], requires_grad=True)
    q(x).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 0.0, 0.0]


def _fit_to_data(q: FixedQuantizer, x: torch.Tensor, lr: float, steps: int) -> FixedFormat:
    """Minimise the quantization MSE over the binary point alone; return the learned format."""
    opt = torch.optim.Adam(q.parameters(), lr=lr)
    for _ in range(steps):
        loss = (q(x) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return q.format


def test_binary_point_moves_up_when_values_clip() -> None:
    torch.manual_seed(0)
    assert _fit_to_data(FixedQuantizer(6, int_bits=1), torch.randn(4096) * 8, 0.05, 200).int_bits >= 4


def test_binary_point_moves_down_when_values_are_small() -> None:
    torch.manual_seed(0)
    assert _fit_to_data(FixedQuantizer(6, int_bits=3), torch.randn(4096) * 0.05, 0.1, 300).int_bits <= 0


@pytest.mark.parametrize(("width", "k"), [(8, 1), (8, 2), (6, 3), (4, 1), (12, 2)])
def test_k_hot_codes_have_at_most_k_nonzero_signed_digits(width: int, k: int) -> None:
    q = KHotQuantizer(width, k)
    y = q(torch.randn(5000, dtype=torch.float64))
    codes = y / q.format.lsb
    assert int(KHotQuantizer.nonzero_digits(codes).max()) <= k
    assert codes.min() >= q.format.min_int and codes.max() <= q.format.max_int


def test_one_hot_weights_are_signed_powers_of_two_or_zero() -> None:
    q = KHotQuantizer(8, 1)
    codes = (q(torch.randn(2000, dtype=torch.float64)) / q.format.lsb).abs()
    nonzero = codes[codes != 0]
    assert torch.equal(torch.exp2(torch.log2(nonzero).round()), nonzero)


def test_k_hot_with_k_equal_width_is_plain_rounding() -> None:
    x = torch.randn(1000, dtype=torch.float64)
    assert torch.equal(KHotQuantizer(6, 6, int_bits=3)(x), FixedQuantizer(6, int_bits=3)(x))


@pytest.mark.parametrize(("code", "digits"), [(0, 0), (1, 1), (5, 2), (7, 2), (15, 2), (11, 3), (-6, 2)])
def test_nonzero_digits_counts_canonical_signed_digits(code: int, digits: int) -> None:
    assert KHotQuantizer.nonzero_digits(torch.tensor([code])).item() == digits


def test_spec_rejects_k_hot_wider_than_the_word() -> None:
    with pytest.raises(ValueError, match="k_hot"):
        Spec(4, k_hot=5)


def test_spec_builds_per_channel_quantizers_only_when_asked() -> None:
    assert len(Spec(8).build(16).int_bits) == 1
    assert len(Spec(8, per_channel=True).build(16).int_bits) == 16
    assert isinstance(Spec(8, k_hot=2).build(), KHotQuantizer)
    assert Spec(8).build().format == FixedFormat(8, 0, True, "RND_CONV", "SAT")
