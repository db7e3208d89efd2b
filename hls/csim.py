"""Running a converted project's C simulation and its exact emulation on real-valued inputs, and the
edge-case vectors that proofs run on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qfx.fixed import FixedFormat
from qfx.hls.emulate import Emulator
from qfx.hls.project import Project


def run_csim(project: str | Path | Project, x: np.ndarray) -> np.ndarray:
    """C simulation outputs (float64 real values) for real inputs x [N, ...].

    The first quantizer is applied here exactly, so the C code receives the bits the hardware would.
    """
    project = Project.open(project)
    return project.csim.predict(project.quantize_inputs(x))


def emulate(project: str | Path | Project, x: np.ndarray, emulator: Emulator | None = None) -> np.ndarray:
    """The exact emulation's outputs [N, n_out] (pass an `Emulator` to collect its quantizer events)."""
    project = Project.open(project)
    x = project.check_inputs(x)
    return (emulator or Emulator(project.graph)).run(x).reshape(len(x), -1)


def edge_vectors(fmt: FixedFormat, shape: list[int], n: int, seed: int = 0) -> np.ndarray:
    """Half random over 1.5x the input range, half edge cases: min, max, one LSB beyond each (saturation
    or wrap), zero, half-LSB ties and values a whole range away (wrap boundaries)."""
    rng = np.random.default_rng(seed)
    size = (n, *shape)
    span = fmt.max_value - fmt.min_value
    lo, hi = fmt.min_value - span / 4, fmt.max_value + span / 4
    uniform = rng.uniform(lo, hi, size)
    edges = np.array(
        [
            fmt.min_value,
            fmt.max_value,
            fmt.min_value - fmt.lsb,
            fmt.max_value + fmt.lsb,
            0.0,
            fmt.lsb / 2,
            -fmt.lsb / 2,
            fmt.max_value + fmt.lsb / 2,
            fmt.min_value - span - fmt.lsb,
            fmt.max_value + span + fmt.lsb,
            fmt.min_value + fmt.lsb / 2,
        ]
    )
    edge = edges[rng.integers(0, len(edges), size)]
    return np.where(np.arange(n).reshape(-1, *[1] * len(shape)) % 2 == 0, uniform, edge)
