"""Export + convert + compile time of a QFX jet-tagging-shaped MLP (16-64-32-32-5), next to plain
hls4ml converting and compiling the same network in float through its PyTorch frontend, in one run.

Prints a table and writes bench/results/convert_time.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path

import hls4ml
import torch
from torch import nn

import qfx.nn as qnn
from qfx.export import to_onnx
from qfx.hls.convert import convert
from qfx.quant import Spec
from qfx.train import calibrate

WIDTHS = (16, 64, 32, 32, 5)


def qfx_mlp(bits: int) -> qnn.Sequential:
    layers: list[nn.Module] = [qnn.Quant(Spec(bits))]
    for i, (a, b) in enumerate(itertools.pairwise(WIDTHS)):
        last = i == len(WIDTHS) - 2
        layers.append(qnn.Linear(a, b, weight=bits, result=None))
        if not last:
            layers.append(qnn.ReLU(bits))
    return qnn.Sequential(*layers)


def float_mlp() -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(WIDTHS):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def time_qfx(work: Path, bits: int) -> dict[str, float]:
    model = qfx_mlp(bits)
    x = torch.randn(256, WIDTHS[0])
    calibrate(model, x)
    t0 = time.perf_counter()
    to_onnx(model, x[:1], work / "m.onnx")
    t1 = time.perf_counter()
    # RTL is left out: plain hls4ml writes none, and bench/rtl_sim.py times it.
    convert(work / "m.onnx", work / "prj", force=True, rtl="none")
    t2 = time.perf_counter()
    return {"export_s": t1 - t0, "convert_compile_s": t2 - t1, "total_s": t2 - t0}


def time_hls4ml(work: Path) -> dict[str, float]:
    model = float_mlp().eval()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        config = hls4ml.utils.config_from_pytorch_model(model, (WIDTHS[0],), backend="Vitis")
        hm = hls4ml.converters.convert_from_pytorch_model(
            model, output_dir=str(work / "plain"), backend="Vitis", part="xczu3eg-sbva484-1-e", hls_config=config
        )
        t1 = time.perf_counter()
        hm.compile()
    t2 = time.perf_counter()
    return {"export_s": 0.0, "convert_compile_s": t2 - t0, "convert_s": t1 - t0, "total_s": t2 - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--bits", type=int, default=8)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "convert_time.json")
    args = p.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"qfx": [], "hls4ml": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            runs["hls4ml"].append(time_hls4ml(Path(tmp) / f"h{r}"))
            runs["qfx"].append(time_qfx(Path(tmp) / f"q{r}", args.bits))
    med = {
        k: {m: statistics.median(run[m] for run in v) for m in ("export_s", "convert_compile_s", "total_s")}
        for k, v in runs.items()
    }
    print(f"MLP {'-'.join(map(str, WIDTHS))}, median of {args.repeats}, seconds")
    print(f"{'flow':<34}{'export':>10}{'convert+compile':>18}{'total':>10}")
    print(
        f"{'plain hls4ml (float, PyTorch)':<34}{med['hls4ml']['export_s']:>10.2f}"
        f"{med['hls4ml']['convert_compile_s']:>18.2f}{med['hls4ml']['total_s']:>10.2f}"
    )
    print(
        f"{f'qfx {args.bits}-bit (QONNX, exact types)':<34}{med['qfx']['export_s']:>10.2f}"
        f"{med['qfx']['convert_compile_s']:>18.2f}{med['qfx']['total_s']:>10.2f}"
    )
    ratio = med["qfx"]["total_s"] / med["hls4ml"]["total_s"]
    print(f"ratio qfx / plain hls4ml: {ratio:.2f}x (goal <= 1.5x)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "median": med, "ratio": ratio}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
