"""`qfx estimate-csv`: wa-hls4ml-format rows back with predicted columns added."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from qfx.surrogate.dataset import TARGETS, WA_PART, dense_layers, read_csv
from qfx.surrogate.estimate import estimators
from qfx.surrogate.graph import build

PRED_COLUMNS = dict(
    zip(
        TARGETS,
        ("LUT_pred", "FF_pred", "DSP_pred", "BRAM_18K_pred", "WorstLatency_pred", "IntervalMax_pred"),
        strict=True,
    )
)
NEEDED = ("model_string", "prec", "rf", "strategy")


def predict_csv(src: str | Path, dst: str | Path, model: str = "transformer") -> int:
    src, dst = Path(src), Path(dst)
    df = read_csv(src, NEEDED)
    graphs = []
    for i, r in enumerate(df.itertuples(index=False)):
        try:
            widths = [int(w) for w in str(r.model_string).split("-")]
            clock = float(getattr(r, "TargetClockPeriod_hls", 5.0))
            graphs.append(
                build(
                    dense_layers(widths, int(r.prec), int(r.rf)),
                    str(r.strategy),
                    "io_parallel",
                    int(r.rf),
                    clock,
                    WA_PART,
                )
            )
        except (ValueError, TypeError) as e:
            raise ValueError(f"{src}: row {i + 2}: {e}") from None
    ests, _ = estimators()
    if model not in ests:
        raise ValueError(f"model {model!r} is not one of {', '.join(ests)}")
    pred = np.concatenate([ests[model].predict(graphs[i : i + 512]) for i in range(0, len(graphs), 512)])
    for t, col in PRED_COLUMNS.items():
        df[col] = pred[:, TARGETS.index(t)]
    # written beside the destination and renamed, so a failure leaves no half-written file
    fd, tmp = tempfile.mkstemp(dir=dst.parent if dst.parent.exists() else None, suffix=".csv")
    os.close(fd)
    try:
        df.to_csv(tmp, index=False)
        os.replace(tmp, dst)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return len(df)
