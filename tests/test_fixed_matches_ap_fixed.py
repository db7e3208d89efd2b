"""qfx.fixed.quantize against Xilinx's real ap_fixed.h, compiled with g++: zero mismatches."""

from __future__ import annotations

import math
import random
import shutil

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qfx.fixed import OVERFLOW_MODES, ROUNDING_MODES, FixedFormat, quantize

from .ap_fixed_oracle import ApFixedOracle

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ (make venv installs it)")


def _format_grid() -> list[FixedFormat]:
    """Every mode pair on a spread of (W, I, signed); every width 1..32 with assorted I and modes."""
    shapes = [
        (1, 1),
        (1, 0),
        (2, 5),
        (3, 2),
        (4, -3),
        (5, 5),
        (7, 0),
        (8, 3),
        (8, 12),
        (10, -2),
        (12, 1),
        (16, 6),
        (16, 17),
        (20, 10),
        (24, -8),
        (31, 15),
        (32, 1),
        (32, 32),
    ]
    grid = [
        FixedFormat(w, i, s, q, o)
        for w, i in shapes
        for s in (True, False)
        for q in ROUNDING_MODES
        for o in OVERFLOW_MODES
        if s or o != "WRAP_SM"
    ]
    rng = random.Random(1399)
    for w in range(1, 33):
        for i in (rng.randint(-6, 0), rng.randint(1, w), rng.randint(w, w + 8), rng.randint(-40, 60)):
            signed = rng.random() < 0.6
            overflow = rng.choice([o for o in OVERFLOW_MODES if signed or o != "WRAP_SM"])
            grid.append(FixedFormat(w, i, signed, rng.choice(ROUNDING_MODES), overflow))
    return grid


FORMATS = _format_grid()


@pytest.fixture(scope="module")
def oracle(request: pytest.FixtureRequest) -> ApFixedOracle:
    return ApFixedOracle(FORMATS, request.config.cache.mkdir("ap_fixed_oracle"))


def _interesting_values(f: FixedFormat, rng: random.Random) -> float:
    """Values where formats differ: ties, grid points, range edges, wrap boundaries, any magnitude."""
    kind = rng.randrange(6)
    span = f.max_int - f.min_int + 1
    if kind == 0:  # halves and quarters of the LSB around the whole range and one wrap beyond
        k = rng.randint(4 * (f.min_int - span) - 4, 4 * (f.max_int + span) + 4)
        return math.ldexp(k, -f.frac_bits - 2)
    if kind == 1:  # just around the saturation edges
        edge = rng.choice([f.min_int, f.max_int, f.min_int - 1, f.max_int + 1, 0])
        return math.ldexp(edge + rng.choice([-0.5, 0.5, 0.0, 0.25, -0.75, 1e-9, -1e-9]), -f.frac_bits)
    if kind == 2:  # uniform over twice the range
        return rng.uniform(2 * f.min_value - f.lsb, 2 * f.max_value + f.lsb)
    if kind == 3:  # any sign and magnitude
        return rng.choice([-1, 1]) * math.ldexp(rng.random(), rng.randint(-80, 80))
    if kind == 4:  # a double with a long mantissa close to the grid
        return math.ldexp(rng.randint(-(2**52), 2**52), rng.randint(-60, 10) - f.frac_bits)
    return rng.choice([0.0, -0.0, math.inf, -math.inf, 1e300, -1e300, 5e-324, -5e-324, 2.0**-1022])


def test_quantize_matches_ap_fixed_on_120k_random_cases(oracle: ApFixedOracle) -> None:
    rng = random.Random(2024)
    cases = []
    for _ in range(120_000):
        idx = rng.randrange(len(FORMATS))
        cases.append((idx, _interesting_values(FORMATS[idx], rng)))
    expected = oracle(cases)
    mismatches = []
    by_format: dict[int, list[int]] = {}
    for n, (idx, _) in enumerate(cases):
        by_format.setdefault(idx, []).append(n)
    for idx, rows in by_format.items():
        x = torch.tensor([cases[n][1] for n in rows], dtype=torch.float64)
        got = FORMATS[idx].quantize(x).tolist()
        mismatches += [
            (str(FORMATS[idx]), cases[n][1], g, expected[n]) for n, g in zip(rows, got, strict=True) if g != expected[n]
        ]
    assert mismatches == [], f"{len(mismatches)} mismatches, first: {mismatches[:5]}"


@st.composite
def _case(draw: st.DrawFn) -> tuple[int, float]:
    idx = draw(st.integers(0, len(FORMATS) - 1))
    f = FORMATS[idx]
    grid_point = st.integers(4 * f.min_int - 64, 4 * f.max_int + 64).map(lambda k: math.ldexp(k, -f.frac_bits - 2))
    any_float = st.floats(allow_nan=False, width=64)
    near_range = st.floats(2 * f.min_value - 1, 2 * f.max_value + 1, allow_nan=False)
    return idx, draw(st.one_of(grid_point, any_float, near_range))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases=st.lists(_case(), min_size=20, max_size=60))
def test_quantize_matches_ap_fixed_property(oracle: ApFixedOracle, cases: list[tuple[int, float]]) -> None:
    expected = oracle(cases)
    got = [FORMATS[i].quantize(torch.tensor([x], dtype=torch.float64)).item() for i, x in cases]
    assert got == expected


# UG1399 (Vitis HLS user guide), "Quantization Modes" and "Overflow Modes" examples.
UG1399_GOLDEN = [
    ("ap_fixed<3,2,AP_RND,AP_SAT>", 1.25, 1.5),
    ("ap_fixed<3,2,AP_RND,AP_SAT>", -1.25, -1.0),
    ("ap_fixed<3,2,AP_RND_ZERO,AP_SAT>", 1.25, 1.0),
    ("ap_fixed<3,2,AP_RND_ZERO,AP_SAT>", -1.25, -1.0),
    ("ap_fixed<3,2,AP_RND_MIN_INF,AP_SAT>", 1.25, 1.0),
    ("ap_fixed<3,2,AP_RND_MIN_INF,AP_SAT>", -1.25, -1.5),
    ("ap_fixed<3,2,AP_RND_INF,AP_SAT>", 1.25, 1.5),
    ("ap_fixed<3,2,AP_RND_INF,AP_SAT>", -1.25, -1.5),
    ("ap_fixed<3,2,AP_RND_CONV,AP_SAT>", 0.75, 1.0),
    ("ap_fixed<3,2,AP_RND_CONV,AP_SAT>", -1.25, -1.0),
    ("ap_fixed<3,2,AP_TRN,AP_SAT>", 1.25, 1.0),
    ("ap_fixed<3,2,AP_TRN,AP_SAT>", -1.25, -1.5),
    ("ap_fixed<3,2,AP_TRN_ZERO,AP_SAT>", 1.25, 1.0),
    ("ap_fixed<3,2,AP_TRN_ZERO,AP_SAT>", -1.25, -1.0),
    ("ap_fixed<4,4,AP_RND,AP_SAT>", 19.0, 7.0),
    ("ap_fixed<4,4,AP_RND,AP_SAT>", -19.0, -8.0),
    ("ap_fixed<4,4,AP_RND,AP_SAT_ZERO>", 19.0, 0.0),
    ("ap_fixed<4,4,AP_RND,AP_SAT_ZERO>", -19.0, 0.0),
    ("ap_fixed<4,4,AP_RND,AP_SAT_SYM>", 19.0, 7.0),
    ("ap_fixed<4,4,AP_RND,AP_SAT_SYM>", -19.0, -7.0),
    ("ap_fixed<4,4,AP_RND,AP_WRAP>", 31.0, -1.0),
    ("ap_fixed<4,4,AP_RND,AP_WRAP>", -19.0, -3.0),
    ("ap_fixed<4,4,AP_RND,AP_WRAP_SM>", 19.0, -4.0),
    ("ap_fixed<4,4,AP_RND,AP_WRAP_SM>", -19.0, 2.0),
]


@pytest.mark.parametrize(("fmt", "x", "expected"), UG1399_GOLDEN)
def test_quantize_gives_ug1399_golden_values(fmt: str, x: float, expected: float) -> None:
    f = FixedFormat.parse(fmt)
    got = quantize(torch.tensor([x], dtype=torch.float64), f.width, f.int_bits, f.signed, f.rounding, f.overflow)
    assert got.item() == expected


def test_ug1399_golden_values_hold_for_the_real_header(request: pytest.FixtureRequest) -> None:
    formats = [FixedFormat.parse(fmt) for fmt, _, _ in UG1399_GOLDEN]
    golden = ApFixedOracle(formats, request.config.cache.mkdir("ap_fixed_oracle"), parts=1)
    assert golden([(i, x) for i, (_, x, _) in enumerate(UG1399_GOLDEN)]) == [e for _, _, e in UG1399_GOLDEN]
