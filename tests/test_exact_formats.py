"""Derived formats hold every possible result: brute force over small formats."""

from __future__ import annotations

import itertools

import pytest
import torch

from qfx.exact import accumulate_format, product_format, sum_format, union_format
from qfx.fixed import FixedFormat

SMALL = [FixedFormat(3, 1), FixedFormat(3, 2, False), FixedFormat(4, -1), FixedFormat(2, 3, False), FixedFormat(1, 0)]


def _values(f: FixedFormat) -> torch.Tensor:
    return torch.arange(f.min_int, f.max_int + 1, dtype=torch.float64) * f.lsb


def _holds(fmt: FixedFormat, values: torch.Tensor) -> bool:
    return bool(torch.equal(fmt.quantize(values), values))


@pytest.mark.parametrize(("a", "b"), list(itertools.product(SMALL, SMALL)))
def test_product_format_holds_every_product(a: FixedFormat, b: FixedFormat) -> None:
    assert _holds(product_format(a, b), torch.outer(_values(a), _values(b)).flatten())


@pytest.mark.parametrize(("a", "b"), list(itertools.product(SMALL, SMALL)))
def test_sum_format_holds_every_sum(a: FixedFormat, b: FixedFormat) -> None:
    assert _holds(sum_format(a, b), (_values(a)[:, None] + _values(b)[None, :]).flatten())


@pytest.mark.parametrize("n", [1, 2, 3, 8, 100])
def test_accumulate_format_holds_n_extreme_terms(n: int) -> None:
    term = FixedFormat(5, 2)
    extremes = torch.tensor([n * term.min_value, n * term.max_value], dtype=torch.float64)
    assert _holds(accumulate_format(term, n), extremes)


def test_union_format_holds_every_channel_format() -> None:
    channels = [FixedFormat(4, 1), FixedFormat(4, 3), FixedFormat(4, -2, False)]
    union = union_format(channels)
    assert all(union.contains(c) for c in channels)


def test_results_wider_than_float64_keeps_exact_are_refused_with_the_place() -> None:
    with pytest.raises(ValueError, match=r"fc9.*needs 64 bits"):
        product_format(FixedFormat(32, 4), FixedFormat(32, 4), "fc9")
