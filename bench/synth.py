"""Open-flow synthesis (Yosys 0.70 synth_xilinx) of the digits MLP and CNN, both RTL styles, on Ultra96-v2
and PYNQ-Z2: LUT/FF/DSP/CARRY, logic depth and seconds, with the surrogate's estimate beside each.

The surrogate was trained on Vitis HLS figures of hls4ml's C++, not on qfx's RTL: its error here is the
point of the column (how far the two designs and the two flows are apart), not a target.
Prints a table and writes bench/results/synth.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from qfx.data import digits
from qfx.export import to_onnx
from qfx.hls.convert import convert
from qfx.hls.project import Project
from qfx.hls.synth.synthesize import synth
from qfx.models import digits_cnn, digits_mlp
from qfx.surrogate.estimate import estimate
from qfx.surrogate.graph import from_project
from qfx.train import fit

MODELS = {"mlp": lambda bits: digits_mlp(bits), "cnn": lambda bits: digits_cnn(bits)}
BOARDS = ("ultra96v2", "pynqz2")
STYLES = ("da", "mult")


def export(name: str, bits: int, epochs: int, work: Path) -> Path:
    torch.manual_seed(0)
    data = digits(images=name == "cnn")
    model = MODELS[name](bits)
    fit(model, data, epochs=epochs)
    path = work / f"{name}.onnx"
    to_onnx(model.eval(), data.x_test[:1], path)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bits", type=int, default=6)
    p.add_argument("--epochs", type=int, default=5, help="training is only there to give realistic weights")
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--boards", nargs="+", default=list(BOARDS), choices=list(BOARDS))
    p.add_argument("--styles", nargs="+", default=list(STYLES), choices=list(STYLES))
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "synth.json")
    args = p.parse_args()
    rows = []
    head = f"{'model':<6}{'board':<11}{'style':<6}{'LUT':>8}{'FF':>8}{'DSP':>6}{'CARRY':>7}{'depth':>7}{'lat':>5}"
    head += f"{'seconds':>9}{'est LUT':>9}{'est FF':>8}{'est DSP':>8}"
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.models:
            onnx_path = export(name, args.bits, args.epochs, work)
            for board in args.boards:
                for style in args.styles:
                    out = work / f"{name}_{board}_{style}"
                    convert(onnx_path, out, board=board, rtl=style)
                    r = synth(out, tool="yosys", jobs=args.jobs)
                    est = estimate(from_project(Project(out)), board)
                    t = r["total"]
                    rows.append({"model": name, "board": board, "style": style, "report": r, "estimate": est})
                    print(
                        f"{name:<6}{board:<11}{style:<6}{t['LUT']:>8,}{t['FF']:>8,}{t['DSP']:>6}{t['CARRY']:>7}"
                        f"{t['logic_depth']:>7}{r['latency_cycles']:>5}{r['seconds']:>9.1f}"
                        f"{est['lut']:>9,.0f}{est['ff']:>8,.0f}{est['dsp']:>8,.0f}",
                        flush=True,
                    )
                    # after every row: a run of an hour keeps what it measured if it is stopped
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps({"bits": args.bits, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
