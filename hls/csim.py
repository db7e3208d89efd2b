"""Running a converted project's C simulation, and comparing it with the exact emulation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from qfx.hls.convert import CSim, read_manifest
from qfx.hls.emulate import Emulator

from qfx.fixed import FixedFormat


def _input_format(manifest: dict[str, Any]) -> FixedFormat:
    return FixedFormat.parse(manifest["input"]["format"])


def check_inputs(x: np.ndarray, manifest: dict[str, Any]) -> np.ndarray:
    """Inputs as float64 [N, ...] of the model's input shape, or a ValueError saying what was expected."""
    x = np.asarray(x, dtype=np.float64)
    want = manifest["input"]["shape"][1:]
    if x.ndim == len(want):
        x = x[None]
    if list(x.shape[1:]) != list(want):
        raise ValueError(f"inputs have shape {list(x.shape)}; the model takes [N, {', '.join(map(str, want))}]")
    if np.isnan(x).any():
        raise ValueError("inputs contain NaN, which has no fixed-point value")
    return x


def run_csim(project_dir: str | Path, x: np.ndarray) -> np.ndarray:
    """C simulation outputs (float64 real values) for real inputs x [N, ...].

    The first quantizer is applied here exactly, so the C code receives the bits the hardware would.
    """
    manifest = read_manifest(project_dir)
    x = check_inputs(x, manifest)
    xq = _input_format(manifest).quantize(torch.from_numpy(x)).numpy()
    return CSim(project_dir).predict(xq)


def emulate(project_dir: str | Path, x: np.ndarray) -> np.ndarray:
    manifest = read_manifest(project_dir)
    x = check_inputs(x, manifest)
    y = Emulator(onnx.load(str(Path(project_dir) / "model.onnx"))).run(x)
    return y.reshape(len(x), -1)


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
