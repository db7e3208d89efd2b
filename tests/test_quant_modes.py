"""Every ap_fixed rounding mode with every overflow mode hls4ml's types carry converts exactly (emulation
== C simulation), through hls4ml's per-layer types: activations by qfx's pass, constants as exact values;
WRAP_SM, which hls4ml's types lack, is refused naming the node."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper, numpy_helper

from qfx.cli import main
from qfx.hls.project import Project

from .conversion_models import quant, save_model

pytestmark = pytest.mark.slow
ROUNDINGS = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV")
OVERFLOWS = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")


def chain(path: Path, overflow: str, roundings: tuple[str, ...] = ROUNDINGS) -> Path:
    """x -> (MatMul -> Quant with one rounding each and `overflow`) per rounding; narrow types, so values
    overflow and land on ties; the weights' Quant uses the first rounding too (folded to exact values)."""
    rng = np.random.default_rng(len(overflow))
    nodes: list = []
    inits: list = []
    x = quant("xq", "x", 2.0**-3, 7, 1, nodes, inits)
    for n, rounding in enumerate(roundings):
        w = f"w{n}"
        inits.append(numpy_helper.from_array((rng.normal(0, 0.6, (6, 6))).astype(np.float32), w))
        wq = quant(f"{w}q", w, 2.0**-3, 5, 1, nodes, inits, qfx_rounding=roundings[0], qfx_overflow=overflow)
        nodes.append(helper.make_node("MatMul", [x, wq], [f"h{n}"], name=f"dense{n}"))
        x = quant(f"q{n}", f"h{n}", 2.0**-2, 5, 1, nodes, inits, qfx_rounding=rounding, qfx_overflow=overflow)
    save_model(str(path), nodes, inits, 6, 6, out=x)
    return path


@pytest.mark.parametrize("overflow", OVERFLOWS)
def test_every_rounding_with_this_overflow_converts_exactly(tmp_path: Path, overflow: str) -> None:
    model = chain(tmp_path / "m.onnx", overflow)
    args = ["convert", str(model), "-o", str(tmp_path / "p"), "--rtl", "none", "--simulator", "none"]
    assert main([*args, "--check", "1000"]) == 0
    check = Project(tmp_path / "p")["check"]
    assert check["mismatches"] == 0
    kind = "wrapped" if overflow == "WRAP" else "saturated"
    assert all(check["quantizers"][f"q{n}_node"].get(kind, 0) > 0 for n in range(len(ROUNDINGS)))
    rounded = [n for n, r in enumerate(ROUNDINGS) if r.startswith("RND")]  # truncation has no ties to decide
    assert all(check["quantizers"][f"q{n}_node"]["ties"] > 0 for n in rounded)


def test_wrap_sm_is_refused_naming_the_node(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = chain(tmp_path / "m.onnx", "WRAP_SM", ("RND",))
    assert main(["convert", str(model), "-o", str(tmp_path / "p"), "--rtl", "none", "--no-check"]) == 2
    assert "node q0_node: overflow WRAP_SM" in capsys.readouterr().err
