"""Surrogate accuracy on wa-hls4ml's dense sweep (Vitis HLS 2023.2; data by the wa-hls4ml authors,
arXiv 2511.05615, CC-BY-NC-4.0), test split = unseen architectures: R², SMAPE (DSP/BRAM after rounding)
and the 75th-percentile absolute percent error per target, for the GNN, the transformer and both
baselines, plus milliseconds per model estimated. Trains the shipped checkpoint with --save.

Prints a table and writes bench/results/surrogate.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

# This script's name is the issue's; run as a script, its folder would shadow the `surrogate` package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from qfx.surrogate.baselines import Analytic, Trees  # noqa: E402
from qfx.surrogate.dataset import TARGETS, is_test, load  # noqa: E402
from qfx.surrogate.estimator import CHECKPOINT, save  # noqa: E402
from qfx.surrogate.graph import from_row  # noqa: E402
from qfx.surrogate.training import fit_surrogates  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wa-hls4ml" / "dense_3layer_vitis2023.2.csv"


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, dict[str, float]]:
    out = {}
    for t, name in enumerate(TARGETS):
        known = np.isfinite(y[:, t])  # reports without this target are not scored
        a, b = y[known, t], p[known, t]
        if name in ("dsp", "bram"):
            b = np.round(b * (2 if name == "bram" else 1)) / (2 if name == "bram" else 1)  # BRAM comes in halves
        denom = np.abs(a) + np.abs(b)
        smape = np.where(denom == 0, 0.0, 2 * np.abs(a - b) / np.where(denom == 0, 1, denom))
        ss = ((a - a.mean()) ** 2).sum()
        ape = np.abs(a - b) / np.maximum(np.abs(a), 1e-9) * 100
        out[name] = {
            "r2": float(1 - ((a - b) ** 2).sum() / ss) if ss else float("nan"),
            "smape": float(100 * smape.mean()),
            "ape75": float(np.percentile(ape[a != 0], 75)) if (a != 0).any() else 0.0,
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="*", type=Path, default=[DATA])
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--members", type=int, default=3, help="networks per graph surrogate, averaged")
    p.add_argument("--save", action="store_true", help=f"write the trained surrogates to {CHECKPOINT}")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "surrogate.json")
    args = p.parse_args()
    df = load(args.data)
    test = is_test(df["model_id"])
    graphs = [from_row(r) for r in df.to_dict("records")]
    y = df[list(TARGETS)].to_numpy(np.float64)
    tr = [g for g, t in zip(graphs, test, strict=True) if not t]
    te = [g for g, t in zip(graphs, test, strict=True) if t]
    y_tr, y_te = y[~test], y[test]
    print(f"{len(df)} reports, {df['model_id'].nunique()} architectures; test split {test.sum()} rows")
    results, models, fit_s = {}, {}, {}
    for name, fit in (("analytic", lambda: Analytic().fit(tr, y_tr)), ("trees", lambda: Trees().fit(tr, y_tr))):
        t0 = time.perf_counter()
        models[name] = fit()
        fit_s[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    models |= fit_surrogates(tr, y_tr, args.epochs, args.members)
    fit_s |= dict.fromkeys(("gnn", "transformer"), (time.perf_counter() - t0) / 2)
    for name in models:
        pred = models[name].predict(te)
        t0 = time.perf_counter()
        for g in te[:200]:
            models[name].predict([g])
        ms = (time.perf_counter() - t0) / min(200, len(te)) * 1000
        results[name] = {"metrics": metrics(y_te, pred), "train_s": fit_s[name], "ms_per_model": ms}
    print(f"\n{'model':<12}{'target':<16}{'R2':>8}{'SMAPE %':>9}{'APE75 %':>9}")
    for name, r in results.items():
        for target, m in r["metrics"].items():
            print(f"{name:<12}{target:<16}{m['r2']:>8.3f}{m['smape']:>9.2f}{m['ape75']:>9.2f}")
    print(f"\n{'model':<12}{'train s':>9}{'ms/model':>10}")
    for name, r in results.items():
        print(f"{name:<12}{r['train_s']:>9.1f}{r['ms_per_model']:>10.2f}")
    if args.save:
        meta = {
            "data": [str(d.name) for d in args.data],
            "epochs": args.epochs,
            "members": args.members,
            "test_metrics": {k: results[k]["metrics"] for k in ("gnn", "transformer")},
        }
        save({k: models[k] for k in ("gnn", "transformer")}, CHECKPOINT, meta)
        print(f"wrote {CHECKPOINT}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
