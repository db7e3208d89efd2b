"""qfx.fixed.quantize against Xilinx's real ap_fixed.h, compiled with g++: zero mismatches, both on
assignment from double and on fixed-to-fixed casts."""

from __future__ import annotations

import itertools
import math
import random
import shutil

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qfx.fixed import OVERFLOW_MODES, ROUNDING_MODES, FixedFormat, quantize

from .ap_fixed_oracle import ApFixedCastOracle, ApFixedOracle

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


# Fixed-to-fixed casts, as hardware does between layers: `S a = ...; T r = a;`.  In qfx the same is
# `T.quantize(S.quantize(x))`, S a wide (up to 53-bit) accumulator format and T a format of at most 32 bits.


def _cast_shape(kind: str, rng: random.Random) -> tuple[int, int, int, int]:
    """(Wa, Ia, W, I) for one relation between the source's bits and the target's."""
    w = rng.randint(1, 32)
    i = rng.randint(-8, 40)
    f = w - i
    if kind == "finer source, overlapping range":  # rounding, and overflow from the wider integer part
        wa = rng.randint(w + 4, 53)
        fa = f + rng.randint(2, wa - w)
    elif kind == "53-bit accumulator":  # the widest qfx derives, with up to 12 more integer bits
        wa = 53
        fa = wa - (i + rng.randint(0, 12))
    elif kind == "coarser source":  # shifts left: no rounding, overflow only
        wa = rng.randint(1, 53)
        fa = f - rng.randint(1, 12)
    elif kind == "same LSB":
        wa = rng.randint(1, 53)
        fa = f
    elif kind == "source wholly below the target's LSB":  # every source bit is dropped
        wa = rng.randint(1, 53)
        fa = f + wa + rng.randint(-1, 8)
    elif kind == "source wholly above the target's MSB":  # every kept bit is zero
        wa = rng.randint(1, 53)
        fa = -i - rng.randint(0, 6)
    elif kind == "negative integer bits":
        i = rng.randint(-40, -1)
        wa = rng.randint(1, 53)
        fa = wa - (i + rng.randint(-4, 4))
    elif kind == "large integer bits":
        i = rng.choice([rng.randint(33, 80), rng.randint(200, 256)])
        wa = rng.randint(1, 53)
        fa = wa - min(256, i + rng.randint(-6, 6))
    else:  # "narrow target"
        w = rng.randint(1, 3)
        i = rng.randint(-4, 5)
        wa = rng.randint(1, 53)
        fa = w - i + rng.randint(-2, 8)
    return wa, max(-256, min(256, wa - fa)), w, i


CAST_SHAPES = (
    "finer source, overlapping range",
    "53-bit accumulator",
    "coarser source",
    "same LSB",
    "source wholly below the target's LSB",
    "source wholly above the target's MSB",
    "negative integer bits",
    "large integer bits",
    "narrow target",
)


def _cast_pairs() -> list[tuple[FixedFormat, FixedFormat]]:
    """Every target (signedness, Q, O) on three shapes: one that rounds into overflow (the first two of
    CAST_SHAPES), two more from the rest in turn; from signed and unsigned sources alternately, whose own
    modes are drawn at random."""
    rng = random.Random(4112)
    targets = [(s, q, o) for s in (True, False) for q in ROUNDING_MODES for o in OVERFLOW_MODES if s or o != "WRAP_SM"]
    rng.shuffle(targets)
    others = itertools.cycle(CAST_SHAPES[2:])
    pairs = []
    for n, (signed, q, o) in enumerate(targets):
        for kind in (CAST_SHAPES[n % 2], next(others), next(others)):
            wa, ia, w, i = _cast_shape(kind, rng)
            signed_a = len(pairs) % 2 == 0
            o_a = rng.choice([m for m in OVERFLOW_MODES if signed_a or m != "WRAP_SM"])
            source = FixedFormat(wa, ia, signed_a, rng.choice(ROUNDING_MODES), o_a, wide=True)
            pairs.append((source, FixedFormat(w, i, signed, q, o)))
    return pairs


CAST_PAIRS = _cast_pairs()


@pytest.fixture(scope="module")
def cast_oracle(request: pytest.FixtureRequest) -> ApFixedCastOracle:
    return ApFixedCastOracle(CAST_PAIRS, request.config.cache.mkdir("ap_fixed_oracle"))


def _held_code(source: FixedFormat, code: int) -> int:
    """The code, clamped to those the source can hold: AP_SAT_SYM never assigns the most negative one."""
    lowest = source.min_int + (source.overflow == "SAT_SYM" and source.signed and source.width > 1)
    return max(lowest, min(source.max_int, code))


def _source_code(pair: int, quarters: int, nudge: int = 0) -> int:
    """The source code at or just below `quarters` quarter-LSBs of the target, moved by `nudge` source LSBs."""
    source, target = CAST_PAIRS[pair]
    shift = source.frac_bits - target.frac_bits - 2
    code = quarters << shift if shift >= 0 else quarters >> -shift
    return _held_code(source, code + nudge)


def _cast_mismatches(oracle: ApFixedCastOracle, cases: list[tuple[int, int]]) -> list[tuple[str, ...]]:
    """Cases where qfx's two quantize steps differ from the C++ cast, or either side's source is not the code."""
    results = oracle(cases)
    by_pair: dict[int, list[int]] = {}
    for n, (pair, _) in enumerate(cases):
        by_pair.setdefault(pair, []).append(n)
    mismatches = []
    for pair, rows in by_pair.items():
        source, target = CAST_PAIRS[pair]
        x = torch.tensor([math.ldexp(cases[n][1], -source.frac_bits) for n in rows], dtype=torch.float64)
        a = source.quantize(x)
        got = target.quantize(a).tolist()
        for n, x_n, a_n, g in zip(rows, x.tolist(), a.tolist(), got, strict=True):
            code = cases[n][1]
            held, out = results[n]
            expected = math.ldexp(out, -target.frac_bits)
            if held != code or a_n != x_n or g != expected:
                mismatches.append((f"{source} -> {target}", f"code={code} held={held}", f"qfx={g} ap_fixed={expected}"))
    return mismatches


def _assert_casts_match(oracle: ApFixedCastOracle, cases: list[tuple[int, int]]) -> None:
    mismatches = _cast_mismatches(oracle, cases)
    assert mismatches == [], f"{len(mismatches)} of {len(cases)} casts differ, first: {mismatches[:5]}"


def test_cast_pairs_cover_every_target_mode_pair_from_signed_and_unsigned_sources_up_to_53_bits() -> None:
    modes = {(t.signed, t.rounding, t.overflow) for _, t in CAST_PAIRS}
    assert len(modes) == 7 * 5 + 7 * 4
    assert {s.signed for s, _ in CAST_PAIRS} == {True, False}
    assert max(s.width for s, _ in CAST_PAIRS) == 53
    assert max(t.width for _, t in CAST_PAIRS) == 32
    assert any(t.int_bits < 0 for _, t in CAST_PAIRS) and any(s.int_bits < 0 for s, _ in CAST_PAIRS)
    assert any(t.int_bits > 200 for _, t in CAST_PAIRS) and any(s.int_bits > 200 for s, _ in CAST_PAIRS)


def test_cast_oracle_holds_each_source_code_exactly_not_via_a_double(cast_oracle: ApFixedCastOracle) -> None:
    extremes = (-(2**60), 2**60, 0, 1, -1)
    cases = [(p, _held_code(s, c)) for p, (s, _) in enumerate(CAST_PAIRS) for c in extremes]
    held = [h for h, _ in cast_oracle(cases)]
    assert held == [c for _, c in cases]


def test_fixed_to_fixed_cast_matches_ap_fixed_on_random_source_values(cast_oracle: ApFixedCastOracle) -> None:
    rng = random.Random(7)
    cases = []
    for p, (source, _) in enumerate(CAST_PAIRS):
        cases += [(p, _held_code(source, rng.randint(source.min_int, source.max_int))) for _ in range(8)]
        # small magnitudes too: codes of every bit length the source has, either sign
        for _ in range(8):
            code = rng.choice([-1, 1]) * rng.getrandbits(rng.randint(1, source.width))
            cases.append((p, _held_code(source, code)))
    _assert_casts_match(cast_oracle, cases)


def test_fixed_to_fixed_cast_matches_ap_fixed_at_the_target_range_edges_and_one_lsb_beyond(
    cast_oracle: ApFixedCastOracle,
) -> None:
    cases = []
    for p, (_, target) in enumerate(CAST_PAIRS):
        for edge in (target.min_int, target.max_int, target.min_int - 1, target.max_int + 1, 0, -1):
            cases += [(p, _source_code(p, 4 * edge, nudge)) for nudge in (-1, 0, 1)]
    _assert_casts_match(cast_oracle, cases)


def test_fixed_to_fixed_cast_matches_ap_fixed_on_ties_at_half_a_target_lsb(cast_oracle: ApFixedCastOracle) -> None:
    rng = random.Random(11)
    cases = []
    for p, (_, target) in enumerate(CAST_PAIRS):
        lsbs = {target.min_int - 1, target.min_int, target.max_int - 1, target.max_int, -2, -1, 0, 1}
        lsbs |= {rng.randint(target.min_int, target.max_int) for _ in range(2)}
        # exactly on the tie, and one source LSB to either side of it
        cases += [(p, _source_code(p, 4 * k + 2, nudge)) for k in sorted(lsbs) for nudge in (-1, 0, 1)]
    _assert_casts_match(cast_oracle, cases)


def test_fixed_to_fixed_cast_matches_ap_fixed_a_whole_target_range_away(cast_oracle: ApFixedCastOracle) -> None:
    rng = random.Random(13)
    cases = []
    for p, (_, target) in enumerate(CAST_PAIRS):
        span = target.max_int - target.min_int + 1
        for ranges in (-2, -1, 1, 2):
            for k in (target.min_int, target.max_int, rng.randint(target.min_int, target.max_int)):
                cases.append((p, _source_code(p, 4 * (k + ranges * span) + rng.choice([0, 1, 2, 3]))))
    _assert_casts_match(cast_oracle, cases)
