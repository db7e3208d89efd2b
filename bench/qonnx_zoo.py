"""Public QONNX-zoo topologies through `qfx convert` and plain hls4ml 1.3.0, against qonnx's own executor.

The models (FINN's TFC/SFC/LFC/CNV, keyword spotting, network intrusion, hls4ml's jet tagger) are rebuilt
locally with random weights, see bench/zoo_models.py; hls4ml takes its documented QONNX path.

qfx: accepted (proven) or its one-line refusal, seconds, mismatches of its C simulation (host head and tail
included) against the executor. hls4ml: accepted or its error, mismatches, argmax agreement (sign agreement
for one output). A mismatch is a vector with any output differing from the executor's float32 value.
Prints a table and writes bench/results/qonnx_zoo.json after every row.  Needs `pip install -e .[bench]`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes
from zoo_models import BIG, BUILDERS, ZooModel, finn_cnv  # bench/ is on the path when run as a script

QFX = Path(sys.executable).with_name("qfx")


def executor_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """qonnx's executor on the file, one float32 sample at a time: the reference for what the file means."""
    model = ModelWrapper(str(path)).transform(InferShapes())
    name, out = model.graph.input[0].name, model.graph.output[0].name
    ys = [execute_onnx(model, {name: x[i : i + 1].astype(np.float32)})[out] for i in range(len(x))]
    return np.concatenate(ys).reshape(len(x), -1)


def compare(got: np.ndarray, want: np.ndarray) -> dict[str, Any]:
    """Mismatching vectors (the design's exact values rounded once to float32, the executor's type), the
    largest difference, and how often the decision agrees (argmax, or the sign of a single output)."""
    got = got.reshape(want.shape).astype(np.float32)
    decide = (lambda y: y[:, 0] > 0) if want.shape[1] == 1 else (lambda y: y.argmax(1))
    return {
        "mismatches": int(np.any(got != want, axis=1).sum()),
        "max_abs_diff": float(np.abs(got.astype(np.float64) - want).max()),
        "decision_agreement": float(np.mean(decide(got) == decide(want))),
    }


def last_line(text: str, prefix: str = "") -> str:
    lines = [line for line in text.strip().splitlines() if line.startswith(prefix)]
    return (lines or ["(no output)"])[-1][:400]


def run_qfx(
    model: ZooModel, work: Path, x: np.ndarray, want: np.ndarray, simulator: str, rtl: str, timeout: float
) -> dict:
    """`qfx convert FILE -o DIR` with its default proof (the RTL simulator as given), then its C simulation
    through the host's head and tail against the executor."""
    from qfx.hls.csim import run_csim
    from qfx.hls.project import Project

    out = work / "qfx"
    cmd = [str(QFX), "convert", str(model.path), "-o", str(out), "--simulator", simulator, "--rtl", rtl]
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"accepted": False, "seconds": timeout, "exit": None, "error": f"timed out after {timeout:.0f} s"}
    row: dict[str, Any] = {"seconds": time.perf_counter() - t0, "accepted": done.returncode == 0}
    if done.returncode:
        row["exit"] = done.returncode
        row["error"] = last_line(done.stderr, "qfx convert")
        return row
    project = Project(out)
    row["proof"] = {k: project["check"][k] for k in ("vectors", "mismatches")}
    row["rtl"] = {k: (project.rtl or {}).get(k) for k in ("style", "latency", "da4ml_cost")}
    row |= compare(project.tail(run_csim(project, project.head(x))), want)
    return row


def run_hls4ml(model: ZooModel, work: Path, x: np.ndarray, want: np.ndarray) -> dict:
    """hls4ml 1.3.0's QONNX path as its documentation gives it: cleanup, channels last, Gemm to MatMul,
    cleanup, config_from_onnx_model (fixed<16,6> default), convert_from_onnx_model, compile, predict."""
    import hls4ml
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qm = cleanup_model(ModelWrapper(str(model.path)))
            qm = qm.transform(ConvertToChannelsLastAndClean()).transform(GemmToMatMul())
            qm = cleanup_model(qm)
            config = hls4ml.utils.config_from_onnx_model(
                qm, granularity="name", backend="Vitis", default_precision="fixed<16,6>"
            )
            hm = hls4ml.converters.convert_from_onnx_model(
                qm, output_dir=str(work / "hls4ml"), backend="Vitis", hls_config=config
            )
            hm.compile()
            shape = qm.get_tensor_shape(qm.graph.input[0].name)
            xin = x.transpose(0, 2, 3, 1) if x.ndim == 4 and list(shape[1:]) != list(x.shape[1:]) else x
            got = np.asarray(hm.predict(np.ascontiguousarray(xin.reshape(len(x), -1), dtype=np.float64)))
    except Exception as e:
        return {
            "accepted": False,
            "seconds": time.perf_counter() - t0,
            "error": f"{type(e).__name__}: {last_line(str(e))}",
        }
    return {"accepted": True, "seconds": time.perf_counter() - t0} | compare(got, want)


FLOW = f"{'s':>7}{'mism.':>7}{'agree':>8}"
HEAD = f"{'model':<15}{'topology':<28}{'qfx':>9}{FLOW}{'hls4ml':>9}{FLOW}"


def cells(r: dict, word: str) -> str:
    """One flow's columns: accepted (or `word`), seconds, mismatching vectors, decision agreement."""
    if not r["accepted"]:
        return f"{word:>9}{r['seconds']:>7.1f}{'-':>7}{'-':>8}"
    return f"{'accepted':>9}{r['seconds']:>7.1f}{r['mismatches']:>7}{100 * r['decision_agreement']:>7.1f}%"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(BUILDERS), choices=list(BUILDERS), help="default: all")
    p.add_argument("--small", action="store_true", help=f"skip the big models {', '.join(BIG)}")
    p.add_argument("--vectors", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    exporters = "Brevitas's exporter: TorchScript wrote the public files, dynamo is its default on torch>=2.9"
    p.add_argument("--exporter", choices=("torchscript", "dynamo"), default="torchscript", help=exporters)
    p.add_argument("--cnv-divisor", type=int, default=4, help="CNV's channel widths divided by this (1: full CNV)")
    simulators = ("verilator", "icarus", "none")
    p.add_argument("--simulator", default="verilator", choices=simulators, help="qfx's proof's RTL simulator")
    # da4ml's optimization of a 784x64 layer takes ~10 min; mult writes the products as they are (~20 s)
    p.add_argument("--rtl", default="da", choices=("da", "mult", "none"), help="qfx's RTL style")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds one qfx convert may take")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "qonnx_zoo.json")
    args = p.parse_args()
    builders = BUILDERS | {"cnv_1w1a": finn_cnv(args.cnv_divisor)}
    names = [m for m in args.models if not (args.small and m in BIG)]
    rows: list[dict[str, Any]] = []
    keys = ("vectors", "seed", "exporter", "cnv_divisor", "simulator", "rtl")
    result = {k: getattr(args, k) for k in keys} | {"rows": rows}
    print(f"mismatching vectors of {args.vectors} against qonnx's executor; agreement of argmax (sign of one output)")
    print(HEAD)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            work = Path(tmp) / name
            work.mkdir()
            model = builders[name](work / f"{name}.onnx", args.seed, args.exporter == "dynamo")
            x = model.inputs(np.random.default_rng(args.seed + 1), args.vectors)
            t0 = time.perf_counter()
            want = executor_outputs(model.path, x)
            executor_s = time.perf_counter() - t0
            q = run_qfx(model, work, x, want, args.simulator, args.rtl, args.timeout)
            h = run_hls4ml(model, work, x, want)
            rows.append({"model": name, "topology": model.about, "executor_s": executor_s, "qfx": q, "hls4ml": h})
            refused = {2: "refused", 3: "unproven"}.get(q.get("exit"), "failed")
            print(f"{name:<15}{model.about:<28}{cells(q, refused)}{cells(h, 'failed')}", flush=True)
            for flow, r in (("qfx", q), ("hls4ml", h)):
                if "error" in r:
                    print(f"{'':<15}{flow}: {r['error']}", flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2))  # after every row: a long run keeps what it measured
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
