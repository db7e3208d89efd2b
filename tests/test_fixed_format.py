"""FixedFormat and quantize: the C++ type names, bad formats, NaN and inf, unusual binary points."""

from __future__ import annotations

import math

import pytest
import torch

from qfx.fixed import FixedFormat, quantize


def test_format_prints_as_the_cpp_type() -> None:
    assert str(FixedFormat(8, 3, True, "RND_CONV", "SAT")) == "ap_fixed<8,3,AP_RND_CONV,AP_SAT>"
    assert str(FixedFormat(8, 3)) == "ap_fixed<8,3>"
    assert str(FixedFormat(6, 0, False, "RND")) == "ap_ufixed<6,0,AP_RND>"
    assert str(FixedFormat(6, 2, True, "TRN", "SAT_SYM")) == "ap_fixed<6,2,AP_TRN,AP_SAT_SYM>"


@pytest.mark.parametrize("text", ["ap_fixed<8,3,AP_RND_CONV,AP_SAT>", "ap_ufixed<4,-2>", "ap_fixed<16,6,AP_RND>"])
def test_cpp_type_names_parse_back_to_the_same_format(text: str) -> None:
    assert str(FixedFormat.parse(text)) == text


def test_hls4ml_precision_strings_round_trip() -> None:
    f = FixedFormat(10, 4, False, "RND_ZERO", "SAT_SYM")
    assert f.to_hls4ml() == "ufixed<10,4,RND_ZERO,SAT_SYM>"
    assert FixedFormat.parse(f.to_hls4ml()) == f


@pytest.mark.parametrize("width", [0, 33, -1])
def test_width_outside_1_to_32_is_rejected_naming_width(width: int) -> None:
    with pytest.raises(ValueError, match=r"width=.*1\.\.32"):
        quantize(torch.zeros(1, dtype=torch.float64), width, 1)
    with pytest.raises(ValueError, match="width"):
        FixedFormat(width, 1)


def test_unknown_rounding_mode_is_rejected_listing_the_modes() -> None:
    with pytest.raises(ValueError, match=r"rounding='ROUND'.*RND_CONV"):
        quantize(torch.zeros(1, dtype=torch.float64), 8, 3, rounding="ROUND")


def test_unknown_overflow_mode_is_rejected_listing_the_modes() -> None:
    with pytest.raises(ValueError, match=r"overflow='CLIP'.*SAT_SYM"):
        FixedFormat(8, 3, overflow="CLIP")


def test_wrap_sm_on_an_unsigned_type_is_rejected_as_ap_fixed_does() -> None:
    with pytest.raises(ValueError, match="WRAP_SM"):
        quantize(torch.zeros(1, dtype=torch.float64), 8, 3, signed=False, overflow="WRAP_SM")


def test_nan_input_raises_since_ap_fixed_has_no_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        quantize(torch.tensor([1.0, math.nan], dtype=torch.float64), 8, 3)


def test_infinity_saturates_under_sat_and_wraps_to_zero_like_the_header() -> None:
    x = torch.tensor([math.inf, -math.inf], dtype=torch.float64)
    assert quantize(x, 8, 3, overflow="SAT").tolist() == [3.96875, -4.0]
    assert quantize(x, 8, 3, overflow="SAT_SYM").tolist() == [3.96875, -3.96875]
    assert quantize(x, 8, 3, overflow="WRAP").tolist() == [0.0, 0.0]


def test_quantize_returns_float64_for_any_float_input() -> None:
    assert quantize(torch.tensor([0.3], dtype=torch.float32), 8, 1).dtype == torch.float64


def test_negative_integer_bits_give_a_range_below_one() -> None:
    f = FixedFormat(4, -2, overflow="SAT")
    assert (f.lsb, f.min_value, f.max_value) == (2.0**-6, -(2.0**-3), 7 * 2.0**-6)
    assert f.quantize(torch.tensor([1.0])).item() == f.max_value


def test_more_integer_bits_than_width_give_a_coarse_grid() -> None:
    assert quantize(torch.tensor([100.0, 7.0, 9.0]), 4, 8, rounding="RND").tolist() == [96.0, 0.0, 16.0]


def test_contains_tells_whether_a_cast_is_lossless() -> None:
    assert FixedFormat(10, 4).contains(FixedFormat(8, 3))
    assert not FixedFormat(8, 3).contains(FixedFormat(8, 4))
    assert FixedFormat(9, 4).contains(FixedFormat(8, 3, signed=False))
    assert not FixedFormat(8, 3).contains(FixedFormat(8, 3, signed=False))
