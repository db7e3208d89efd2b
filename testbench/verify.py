"""Emulation, C simulation and RTL simulation on the same random and edge-case vectors, compared pairwise,
with how often each quantizer saturated, wrapped or met a tie on them."""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from qfx.hls.csim import edge_vectors, emulate, run_csim
from qfx.hls.emulate import Emulator
from qfx.hls.project import Project
from qfx.hls.rtl.trace import trace
from qfx.testbench.sim import simulate

# Not an HDL simulator: the traced program the RTL is written from, run by da4ml's bit-exact interpreter
# (seconds instead of a Verilator build; the Verilog emission itself is proven by the HDL simulators).
PROGRAM = "da4ml"


class ProofError(Exception):
    """Two implementations of the same design computed different outputs."""


def compare(results: dict[str, np.ndarray]) -> dict[str, Any]:
    """For every pair of result sets: vectors that differ anywhere, the largest difference, the first one."""
    pairs = {}
    for a, b in combinations(results, 2):
        bad = np.flatnonzero((results[a] != results[b]).any(axis=1))
        pair: dict[str, Any] = {
            "mismatches": len(bad),
            "max_abs_diff": float(np.abs(results[a] - results[b]).max(initial=0.0)),
        }
        if len(bad):
            i = int(bad[0])
            pair["first_mismatch"] = {"vector": i, a: results[a][i].tolist(), b: results[b][i].tolist()}
        pairs[f"{a} vs {b}"] = pair
    return pairs


def run_program(project: Project, x: np.ndarray) -> np.ndarray:
    """The RTL's arithmetic on real inputs x [N, ...], run by da4ml's interpreter of the traced program."""
    traced = trace(project.graph, project.rtl["style"])
    port = project.quantize_inputs(x).reshape(len(x), -1)  # the first quantizer is applied before the port
    weights = np.broadcast_to(traced.weights, (len(port), len(traced.weights)))  # multiplier style's ports
    return traced.comb.predict(np.concatenate([port, weights], axis=1)).reshape(len(port), -1)


def verify(
    project: str | Path | Project,
    vectors: int = 2000,
    seed: int = 0,
    simulator: str | None = "verilator",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """A JSON-able summary; RTL is skipped when simulator is None or the project has none. `simulator` is
    verilator or icarus (the cocotb bench on the Verilog), or "da4ml" (the traced program, interpreted)."""
    project = Project.open(project)
    if vectors < 1:
        raise ValueError(f"vectors {vectors} must be at least 1")
    x = edge_vectors(project.input_format, project.input_shape, vectors, seed)
    emulator = Emulator(project.graph, stats=True)
    results = {"emulation": emulate(project, x, emulator), "csim": run_csim(project, x)}
    summary: dict[str, Any] = {"vectors": len(x), "seed": seed}
    if simulator == PROGRAM and project.rtl:
        results["rtl"] = run_program(project, x)
        summary["rtl"] = {"simulator": PROGRAM, "style": project.rtl["style"]}
    elif simulator is not None and project.rtl:
        if progress:
            progress(f"simulating the RTL on {simulator} (the first build of a design takes a while)")
        sim = simulate(project, x, simulator)
        results["rtl"] = sim.outputs
        summary["rtl"] = {"simulator": simulator, "style": project.rtl["style"], "latency_cycles": sim.latency}
    elif simulator is not None:
        summary["rtl"] = "the project has no RTL (qfx rtl DIR writes it)"
    summary["pairs"] = compare(results)
    summary["mismatches"] = sum(p["mismatches"] for p in summary["pairs"].values())
    summary["quantizers"] = emulator.stats
    return summary


def _head(values: list[float], n: int = 8) -> str:
    return str(values[:n])[:-1] + (", ...]" if len(values) > n else "]")


def check(
    vectors: int = 300, simulator: str | None = "verilator", progress: Callable[[str], None] | None = None
) -> Callable[[Project], dict[str, Any]]:
    """A proof for `convert(check=...)`: verify, and raise ProofError naming the first differing pair."""

    def prove(project: Project) -> dict[str, Any]:
        summary = verify(project, vectors, 0, simulator if project.rtl else None, progress)
        for name, pair in summary["pairs"].items():
            if pair["mismatches"]:
                first = pair["first_mismatch"]
                raise ProofError(
                    f"{name}: {pair['mismatches']} of {summary['vectors']} vectors differ; first at vector "
                    f"{first['vector']}: " + "; ".join(f"{k} {_head(v)}" for k, v in first.items() if k != "vector")
                )
        return summary

    return prove
