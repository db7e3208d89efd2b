"""Emulation, C simulation and RTL simulation on the same random and edge-case vectors, compared pairwise."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from qfx.hls.convert import read_manifest
from qfx.hls.csim import edge_vectors, emulate, run_csim
from qfx.testbench.sim import simulate

from qfx.fixed import FixedFormat


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


def verify(
    project_dir: str | Path, vectors: int = 2000, seed: int = 0, simulator: str | None = "verilator"
) -> dict[str, Any]:
    """A JSON-able summary; RTL is skipped when simulator is None or the project has none."""
    manifest = read_manifest(project_dir)
    x = edge_vectors(FixedFormat.parse(manifest["input"]["format"]), manifest["input"]["shape"][1:], vectors, seed)
    results = {"emulation": emulate(project_dir, x), "csim": run_csim(project_dir, x)}
    summary: dict[str, Any] = {"vectors": len(x)}
    if simulator is not None and manifest.get("rtl"):
        sim = simulate(project_dir, x, simulator)
        results["rtl"] = sim.outputs
        summary["rtl"] = {"simulator": simulator, "style": manifest["rtl"]["style"], "latency_cycles": sim.latency}
    elif simulator is not None:
        summary["rtl"] = "the project has no RTL (qfx rtl DIR writes it)"
    summary["pairs"] = compare(results)
    summary["mismatches"] = sum(p["mismatches"] for p in summary["pairs"].values())
    return summary
