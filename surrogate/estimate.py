"""Estimates with the shipped surrogates: predicted resources and latency, the board's utilization, and
whether the design fits under the usual timing-closure ceilings."""

from __future__ import annotations

import functools
from typing import Any

from qfx import boards
from qfx.surrogate.dataset import TARGETS
from qfx.surrogate.estimator import CHECKPOINT, Estimator, load
from qfx.surrogate.graph import Graph

# The predictions' keys and the board's resources they are measured against.
RESOURCE = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram": "BRAM18"}
CEILINGS = {k: boards.CEILINGS[r] for k, r in RESOURCE.items()}
DEFAULT_MODEL = "transformer"


@functools.lru_cache(maxsize=4)
def estimators(path: str = str(CHECKPOINT)) -> tuple[dict[str, Estimator], dict]:
    return load(path)


def capacity(board: boards.Board) -> dict[str, float]:
    """Device resources in the units of the predictions (BRAM in 18K halves of a BRAM36)."""
    cap = board.capacity()
    return {k: cap[r] for k, r in RESOURCE.items()}


def estimate(graph: Graph, board_name: str = "ultra96v2", model: str = DEFAULT_MODEL) -> dict[str, Any]:
    board = boards.get(board_name)
    ests, meta = estimators()
    if model not in ests:
        raise ValueError(f"model {model!r} is not one of {', '.join(ests)}")
    pred = dict(zip(TARGETS, ests[model].predict([graph])[0].tolist(), strict=True))
    cap = capacity(board)
    utilization = {k: 100.0 * pred[k] / cap[k] if cap[k] else float("inf") for k in CEILINGS}
    over = [k for k in CEILINGS if utilization[k] > 100 * CEILINGS[k]]
    extrapolation = ests[model].extrapolation(graph)
    return {
        "model": model,
        "board": board.name,
        "part": board.part,
        **{k: round(v, 1) for k, v in pred.items()},
        "utilization_percent": {k: round(v, 2) for k, v in utilization.items()},
        "ceilings_percent": {k: 100 * v for k, v in CEILINGS.items()},
        "fits": not over,
        "over_ceiling": over,
        "extrapolation": bool(extrapolation),
        "outside_training_range": extrapolation,
        "trained_on": meta.get("data", []),
    }
