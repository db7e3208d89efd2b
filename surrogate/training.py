"""`qfx surrogate-train`: both graph surrogates on any labelled reports, never on the test architectures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from qfx.surrogate.dataset import TARGETS, is_test, load
from qfx.surrogate.estimator import KINDS, Estimator, save, train
from qfx.surrogate.graph import Graph, from_row


def fit_surrogates(
    graphs: list[Graph], y: np.ndarray, epochs: int, members: int = 3, log: Callable[[str], None] | None = print
) -> dict[str, Estimator]:
    return {kind: train(kind, graphs, y, epochs=epochs, members=members, log=log) for kind in KINDS}


def train_all(
    paths: list[str | Path],
    output: str | Path,
    epochs: int = 60,
    resource_key: str = "resource_report",
    members: int = 3,
) -> dict[str, Estimator]:
    df = load(paths, resource_key)
    train_rows = df[~is_test(df["model_id"])]
    if train_rows.empty:
        raise ValueError("no training rows outside the test architectures")
    print(
        f"{len(df)} reports ({df.attrs['skipped']} records without reports skipped); training on "
        f"{len(train_rows)} (the {len(df) - len(train_rows)} test rows are held out)"
    )
    graphs = [from_row(r) for r in train_rows.to_dict("records")]
    models = fit_surrogates(graphs, train_rows[list(TARGETS)].to_numpy(np.float64), epochs, members)
    meta = {"data": [Path(p).name for p in paths], "epochs": epochs, "members": members, "rows": len(train_rows)}
    save(models, output, meta)
    print(f"wrote {output}")
    return models
