"""RTL simulation speed through the cocotb bench: vectors per second on Verilator and Icarus, and RTL
generation and simulator build times, for the digits MLP (64-64-32-10) and a jet-tagging-shaped MLP
(16-64-32-32-5), in both RTL styles, in one run.

Prints a table and writes bench/results/rtl_sim.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from convert_time import qfx_mlp

from qfx.data import digits
from qfx.export import to_onnx
from qfx.fixed import FixedFormat
from qfx.hls.convert import convert
from qfx.hls.csim import edge_vectors, emulate
from qfx.hls.project import Project
from qfx.hls.rtl.write import write_rtl
from qfx.models import digits_mlp
from qfx.testbench.sim import simulate
from qfx.train import calibrate, fit


def models(bits: int) -> dict[str, tuple[torch.nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    data = digits()
    mlp = digits_mlp(bits)
    fit(mlp, data, epochs=5)
    jet = qfx_mlp(bits)
    calibrate(jet, torch.randn(256, 16))
    return {"digits 64-64-32-10": (mlp, data.x_test), "jet 16-64-32-32-5": (jet, torch.randn(1, 16))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bits", type=int, default=6)
    p.add_argument("--vectors", type=int, default=20000, help="per Verilator run")
    p.add_argument("--icarus-vectors", type=int, default=300)
    p.add_argument("--styles", default="da,mult")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "rtl_sim.json")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, x) in models(args.bits).items():
            onnx_path = Path(tmp) / "m.onnx"
            to_onnx(model.double().eval(), x[:1].double(), onnx_path)
            prj = Path(tmp) / name.split()[0]
            manifest = convert(onnx_path, prj, force=True, rtl="none")
            fmt = FixedFormat.parse(manifest["input"]["format"])
            for style in args.styles.split(","):
                t0 = time.perf_counter()
                project = Project(prj)
                rtl = write_rtl(project, style)
                rtl_s = time.perf_counter() - t0
                project.update("rtl", rtl)
                for simulator, n in (("verilator", args.vectors), ("icarus", args.icarus_vectors)):
                    vectors = edge_vectors(fmt, manifest["input"]["shape"][1:], n)
                    result = simulate(prj, vectors, simulator)
                    mismatches = int((result.outputs != emulate(prj, vectors)).any(axis=1).sum())
                    rows.append(
                        {
                            "model": name,
                            "style": style,
                            "simulator": simulator,
                            "vectors": n,
                            "latency_cycles": result.latency,
                            "rtl_s": rtl_s,
                            "build_s": result.build_s,
                            "run_s": result.run_s,
                            "vectors_per_s": n / result.loop_s,
                            "mismatches": mismatches,
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
    head = f"{'model':<20}{'style':<6}{'simulator':<11}{'vectors':>8}{'latency':>8}{'rtl s':>7}{'build s':>9}"
    print(head + f"{'vectors/s':>11}{'mismatches':>12}")
    for r in rows:
        print(
            f"{r['model']:<20}{r['style']:<6}{r['simulator']:<11}{r['vectors']:>8}{r['latency_cycles']:>8}"
            f"{r['rtl_s']:>7.1f}{r['build_s']:>9.1f}{r['vectors_per_s']:>11,.0f}{r['mismatches']:>12}"
        )
    verilator = [r["vectors_per_s"] for r in rows if r["simulator"] == "verilator"]
    print(f"slowest Verilator run: {min(verilator):,.0f} vectors/s (goal >= 10,000)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"bits": args.bits, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
