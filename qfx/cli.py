"""The `qfx` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from qfx import __version__
from qfx.boards import all_boards
from qfx.data import digits
from qfx.models import ARCHITECTURES, build
from qfx.train import fit, load_checkpoint, save_checkpoint

BOARDS = tuple(all_boards())
SIMULATORS = ("verilator", "icarus")


def _train(args: argparse.Namespace) -> None:
    arch = {"name": args.arch, "bits": args.bits}
    if args.k_hot is not None:
        if args.arch != "digits_mlp":
            raise ValueError("--k-hot applies to --arch digits_mlp")
        arch["k_hot"] = args.k_hot
    model = build(arch)
    data = digits(seed=args.seed, images=args.arch == "digits_cnn")
    print(
        f"training {args.arch} at {args.bits} bits on scikit-learn digits "
        f"({len(data.y_train)} train / {len(data.y_test)} test images)"
    )
    metrics = fit(model, data, epochs=args.epochs, seed=args.seed, log=print)
    save_checkpoint(args.output, model, arch, metrics)
    print(f"test accuracy (bit-exact emulation): {100 * metrics['test']:.1f}%")
    print(f"checkpoint: {args.output}")
    _print_formats(model.formats())


def _print_formats(formats: dict) -> None:
    width = max(len(n) for n in formats)
    for name, fmt in formats.items():
        print(f"  {name:<{width}}  {fmt}")


def _formats(args: argparse.Namespace) -> None:
    if not args.checkpoint.is_file():
        raise ValueError(f"checkpoint {args.checkpoint} does not exist")
    _, ckpt = load_checkpoint(args.checkpoint)
    _print_formats(ckpt["formats"])


def _progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


def _convert(args: argparse.Namespace) -> None:
    from qfx.hls.convert import convert
    from qfx.testbench.verify import check

    simulator = None if args.simulator == "none" else args.simulator
    if args.check < 1 and not args.no_check:
        raise ValueError(f"--check {args.check}: prove on at least 1 vector, or pass --no-check")
    manifest = convert(
        args.model,
        args.output,
        board=args.board,
        backend=args.backend,
        io=args.io,
        strategy=args.strategy,
        reuse=args.reuse,
        clock=args.clock,
        force=args.force,
        rtl=args.rtl,
        check=None if args.no_check else check(args.check, simulator, _progress),
        progress=_progress,
        tail=args.tail,
        precision=args.precision,
        calibration=None if args.calibrate is None else _load_npy(args.calibrate),
        bits=args.bits,
    )
    print(f"hls4ml project for {manifest['board']} ({manifest['part']}, {manifest['clock_ns']} ns) in {args.output}")
    print(f"input {manifest['input']['format']} {manifest['input']['shape']}, C simulation compiled")
    for part, where in (("head", "before the input port"), ("tail", "after the output port")):
        if manifest["host"][part]:
            ops = ", ".join(manifest["host"][part]["ops"])
            print(f"host {part} ({ops}) runs {where} in float32 as the ONNX does: {manifest['host'][part]['file']}")
    if "float_model" in manifest:
        f = manifest["float_model"]
        how = f"precision {f['precision']}" if "precision" in f else f"{f['calibrated_bits']}-bit calibrated formats"
        change = f["output_change"]
        agree = f", argmax agrees on {100 * change['argmax_agreement']:.1f}%" if "argmax_agreement" in change else ""
        print(
            f"float model quantized with {how} ({len(f['formats'])} tensors): outputs differ from the float model "
            f"by at most {change['max_abs']:.4g} (mean {change['mean_abs']:.3g}) on {change['inputs']} inputs{agree}"
        )
    if "rtl" in manifest:
        _print_rtl(manifest["rtl"])
    if "check" in manifest:
        c = manifest["check"]
        print(f"proof: {', '.join(c['pairs'])} agree on all {c['vectors']} vectors")


def _print_rtl(rtl: dict) -> None:
    print(
        f"{rtl['style']} RTL: top {rtl['top']}, latency {rtl['latency']} cycles, II {rtl['ii']}, "
        f"{len(rtl['files'])} Verilog files in {rtl['dir']}/"
    )


def _rtl(args: argparse.Namespace) -> None:
    from qfx.hls.project import Project
    from qfx.hls.rtl.write import write_rtl

    project = Project(args.project)
    rtl = write_rtl(project, args.style, args.latency_cutoff)
    project.replace_rtl(rtl)
    _print_rtl(rtl)


def _sim(args: argparse.Namespace) -> None:
    from qfx.hls.project import Project
    from qfx.testbench.sim import simulate

    project = Project(args.project)
    result = simulate(project, project.head(_load_npy(args.input)), args.simulator, args.rtl)
    np.save(args.output, project.tail(result.outputs))
    report = {
        "vectors": len(result.outputs),
        "simulator": result.simulator,
        "latency_cycles": result.latency,
        "build_s": round(result.build_s, 3),
        "run_s": round(result.run_s, 3),
    }
    Path(args.output).with_suffix(".json").write_text(json.dumps(report, indent=2))
    print(
        f"{len(result.outputs)} vectors through the RTL on {result.simulator}: latency {result.latency} cycles "
        f"-> {args.output}"
    )


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:
        raise ValueError(f"{path}: not a .npy array ({e})") from None


def _csim(args: argparse.Namespace) -> None:
    from qfx.hls.csim import run_csim
    from qfx.hls.project import Project

    project = Project(args.project)
    y = project.tail(run_csim(project, project.head(_load_npy(args.input))))
    np.save(args.output, y)
    print(f"{len(y)} vectors through the C simulation -> {args.output}")


def _verify(args: argparse.Namespace) -> None:
    from qfx.testbench.verify import ProofError, verify

    simulator = None if args.simulator == "none" else args.simulator
    summary = verify(args.project, args.vectors, args.seed, simulator, _progress)
    print(json.dumps(summary, indent=2))
    if summary["mismatches"]:
        bad = [f"{name} ({pair['mismatches']})" for name, pair in summary["pairs"].items() if pair["mismatches"]]
        raise ProofError(f"vectors differ in {', '.join(bad)} of {summary['vectors']}")


def _export(args: argparse.Namespace) -> None:
    from qfx.export import to_onnx

    if not args.checkpoint.is_file():
        raise ValueError(f"checkpoint {args.checkpoint} does not exist")
    model, ckpt = load_checkpoint(args.checkpoint)
    example = digits(images=ckpt["arch"]["name"] == "digits_cnn").x_test[:1]
    to_onnx(model, example, args.output)
    print(f"QONNX model of {ckpt['arch']['name']} ({args.checkpoint}) -> {args.output}")


def _estimate(args: argparse.Namespace) -> None:
    from qfx import boards
    from qfx.hls.graph import load
    from qfx.hls.project import Project
    from qfx.surrogate.estimate import estimate
    from qfx.surrogate.graph import from_onnx, from_project

    board = args.board
    if args.model.is_dir():
        project = Project(args.model)
        graph = from_project(project)
        board = board or project["board"]
    elif args.model.is_file():
        board = board or "ultra96v2"
        graph = from_onnx(
            load(args.model),
            args.reuse,
            strategy=args.strategy,
            io_type=f"io_{args.io}",
            clock_ns=args.clock,
            part=boards.get(board).part,
        )
    else:
        raise ValueError(f"{args.model}: no such file or project directory")
    r = estimate(graph, board, args.surrogate)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    u = r["utilization_percent"]
    print(f"{r['model']} estimate for {r['board']} ({r['part']})")
    for key, label in (("lut", "LUT"), ("ff", "FF"), ("dsp", "DSP"), ("bram", "BRAM18K")):
        print(f"  {label:<8}{r[key]:>12,.0f}  {u[key]:6.1f}% of the board (ceiling {r['ceilings_percent'][key]:.0f}%)")
    print(f"  latency {r['latency_cycles']:,.0f} cycles, II {r['ii']:,.0f}")
    print("  fits" if r["fits"] else f"  does not fit: over the ceiling on {', '.join(r['over_ceiling'])}")
    if r["extrapolation"]:
        print(f"  extrapolating: outside the training data in {', '.join(r['outside_training_range'][:6])}")


def _estimate_csv(args: argparse.Namespace) -> None:
    from qfx.surrogate.predict_csv import predict_csv

    n = predict_csv(args.input, args.output, args.surrogate)
    print(f"{n} rows with predictions -> {args.output}")


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from qfx.surrogate.service import app

    uvicorn.run(app, host=args.host, port=args.port)


def _surrogate_train(args: argparse.Namespace) -> None:
    from qfx.surrogate.training import train_all

    train_all(args.data, args.output, args.epochs, args.resource_key, args.members)


def _surrogate_dataset(args: argparse.Namespace) -> None:
    from qfx.surrogate.dataset import load, write_parquet

    df = load(args.data, args.resource_key)
    write_parquet(df, args.output)
    print(f"wrote {len(df)} reports to {args.output} ({df.attrs['skipped']} records without reports skipped)")


def _synth(args: argparse.Namespace) -> None:
    from qfx.hls.synth.summary import summary
    from qfx.hls.synth.synthesize import synth

    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs {args.jobs} must be at least 1")
    report = synth(args.project, args.tool, args.style, args.jobs, args.timeout, args.logic, _progress)
    print(summary(report, _project_estimate(args.project) if args.compare else None))
    print(f"report: {args.project / 'reports' / 'index.html'}")


def _report(args: argparse.Namespace) -> None:
    from qfx.hls.synth.report import INDEX_HTML, REPORTS, load
    from qfx.hls.synth.summary import summary

    print(summary(load(args.project), _project_estimate(args.project) if args.compare else None))
    print(f"report: {(args.project / REPORTS / INDEX_HTML).resolve()}")


def _project_estimate(path: Path) -> dict:
    """The surrogate's estimate for a converted project (it predicts Vitis HLS figures of hls4ml's code)."""
    from qfx.hls.project import Project
    from qfx.surrogate.estimate import estimate
    from qfx.surrogate.graph import from_project

    project = Project(path)
    return estimate(from_project(project), project["board"])


def _boards(args: argparse.Namespace) -> None:
    print(f"{'board':<12}{'part':<24}{'LUT':>10}{'FF':>10}{'DSP':>7}{'BRAM36':>8}{'URAM':>6}{'clock':>8}")
    for b in all_boards().values():
        print(f"{b.name:<12}{b.part:<24}{b.lut:>10,}{b.ff:>10,}{b.dsp:>7,}{b.bram36:>8,}{b.uram:>6,}{b.clock_ns:>6} ns")


def _demo(args: argparse.Namespace) -> None:
    from qfx.demo import run

    run(args.output, bits=args.bits, epochs=args.epochs, board=args.board)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qfx", description="Trainable fixed point to bit-exact FPGA designs")
    p.add_argument("--version", action="version", version=f"qfx {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a QFX model on scikit-learn's digits and save a checkpoint")
    t.add_argument("--arch", choices=sorted(ARCHITECTURES), default="digits_mlp")
    t.add_argument("--bits", type=int, default=8, help="width of weights, biases and activations")
    t.add_argument("--k-hot", type=int, default=None, help="multiplier-free weights with at most K nonzero bits")
    t.add_argument("--epochs", type=int, default=60)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("-o", "--output", type=Path, default=Path("runs/digits.pt"))
    t.set_defaults(run=_train)
    f = sub.add_parser("formats", help="list the learned format of every tensor in a checkpoint")
    f.add_argument("checkpoint", type=Path)
    f.set_defaults(run=_formats)
    x = sub.add_parser("export", help="QONNX model from a checkpoint of qfx train")
    x.add_argument("checkpoint", type=Path)
    x.add_argument("-o", "--output", type=Path, required=True, help="ONNX file to write")
    x.set_defaults(run=_export)
    c = sub.add_parser("convert", help="QONNX model -> hls4ml project with a compiled C simulation")
    c.add_argument("model", type=Path)
    c.add_argument("-o", "--output", type=Path, required=True)
    c.add_argument("--board", default="ultra96v2", choices=BOARDS)
    c.add_argument("--backend", default="vitis", choices=("vitis", "vivado"))
    c.add_argument("--io", default="parallel", choices=("parallel", "stream"))
    c.add_argument("--strategy", default="latency", choices=("latency", "resource"))
    c.add_argument("--reuse", type=int, default=1)
    c.add_argument("--clock", type=float, default=None, help="clock period in ns (default: the board's)")
    c.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    c.add_argument(
        "--rtl", default="da", choices=("da", "mult", "none"), help="da (distributed arithmetic), mult (multipliers)"
    )
    c.add_argument("--check", type=int, default=300, metavar="N", help="vectors the finished project is proven on")
    c.add_argument("--no-check", action="store_true", help="skip the proof (emulation vs C sim vs RTL)")
    c.add_argument("--simulator", default="verilator", choices=(*SIMULATORS, "none"), help="RTL simulator of the proof")
    c.add_argument("--precision", default=None, help="a float model's format everywhere, e.g. 'ap_fixed<16,6>'")
    c.add_argument("--calibrate", type=Path, default=None, help="a float model's sample inputs (.npy) for formats")
    c.add_argument("--bits", type=int, default=8, help="width of the calibrated formats")
    c.add_argument(
        "--tail",
        default="auto",
        choices=("auto", "host", "hw"),
        help="float ops after the last exact tensor (Softmax, ArgMax): run on the host (auto, host) or in the design",
    )
    c.set_defaults(run=_convert)
    r = sub.add_parser("rtl", help="(re)write a converted project's RTL in DIR/rtl/")
    r.add_argument("project", type=Path)
    r.add_argument("--style", default="da", choices=("da", "mult"), help="da (distributed arithmetic) or mult (x * w)")
    r.add_argument("--latency-cutoff", type=float, default=5.0, help="da4ml adder delays per pipeline stage")
    r.set_defaults(run=_rtl)
    m = sub.add_parser("sim", help="run the cocotb bench on a project's RTL with inputs from a .npy file")
    m.add_argument("project", type=Path)
    m.add_argument("--input", type=Path, required=True)
    m.add_argument("--output", type=Path, required=True)
    m.add_argument("--simulator", default="verilator", choices=SIMULATORS)
    m.add_argument("--rtl", default="qfx", choices=("qfx", "hls"), help="qfx (DIR/rtl) or hls (Vitis HLS's RTL)")
    m.set_defaults(run=_sim)
    s = sub.add_parser("csim", help="run a converted project's C simulation on inputs from a .npy file")
    s.add_argument("project", type=Path)
    s.add_argument("--input", type=Path, required=True)
    s.add_argument("--output", type=Path, required=True)
    s.set_defaults(run=_csim)
    v = sub.add_parser("verify", help="compare emulation, C simulation and RTL on random and edge-case vectors")
    v.add_argument("project", type=Path)
    v.add_argument(
        "--simulator",
        default="verilator",
        choices=(*SIMULATORS, "da4ml", "none"),
        help="da4ml interprets the traced program; none skips the RTL",
    )
    v.add_argument("--vectors", type=int, default=2000)
    v.add_argument("--seed", type=int, default=0)
    v.set_defaults(run=_verify)
    d = sub.add_parser("demo", help="train -> export -> convert -> C simulation, bit-exact, on digits")
    d.add_argument("--bits", type=int, default=6)
    d.add_argument("--epochs", type=int, default=60)
    d.add_argument("--board", default="ultra96v2", choices=BOARDS)
    d.add_argument("-o", "--output", type=Path, default=Path("runs/demo"))
    d.set_defaults(run=_demo)
    e = sub.add_parser("estimate", help="predict LUT/FF/DSP/BRAM/latency of an ONNX model or qfx project")
    e.add_argument("model", type=Path, help="MODEL.onnx or a project directory from qfx convert")
    e.add_argument("--board", default=None, choices=BOARDS, help="default: the project's board, else ultra96v2")
    e.add_argument("--json", action="store_true")
    e.add_argument("--surrogate", default="transformer", choices=("transformer", "gnn"))
    e.add_argument("--strategy", default="latency", choices=("latency", "resource"), help="for an ONNX file")
    e.add_argument("--io", default="parallel", choices=("parallel", "stream"), help="for an ONNX file")
    e.add_argument("--reuse", type=int, default=1, help="for an ONNX file")
    e.add_argument("--clock", type=float, default=5.0, help="for an ONNX file, ns")
    e.set_defaults(run=_estimate)
    ec = sub.add_parser("estimate-csv", help="add predicted columns to wa-hls4ml-format CSV rows")
    ec.add_argument("input", type=Path)
    ec.add_argument("output", type=Path)
    ec.add_argument("--surrogate", default="transformer", choices=("transformer", "gnn"))
    ec.set_defaults(run=_estimate_csv)
    sv = sub.add_parser("serve", help="the surrogates over HTTP (FastAPI), with a page at /")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.set_defaults(run=_serve)
    st = sub.add_parser("surrogate-train", help="train the surrogates on Parquet, wa-hls4ml CSV or JSON reports")
    st.add_argument("data", type=Path, nargs="+")
    st.add_argument("-o", "--output", type=Path, required=True, help="checkpoint to write")
    st.add_argument("--epochs", type=int, default=60)
    st.add_argument("--members", type=int, default=3, help="networks per surrogate, averaged")
    st.set_defaults(run=_surrogate_train)
    sd = sub.add_parser("surrogate-dataset", help="gather Parquet, wa-hls4ml CSV or JSON reports into one Parquet file")
    sd.add_argument("data", type=Path, nargs="+")
    sd.add_argument("-o", "--output", type=Path, required=True, help="Parquet file to write")
    sd.set_defaults(run=_surrogate_dataset)
    for command in (st, sd):
        command.add_argument(
            "--resource-key",
            choices=("resource_report", "hls_resource_report"),
            default="resource_report",
            help="which resources of wa-hls4ml JSON records to use: logic synthesis (default) or the HLS estimate",
        )
    y = sub.add_parser("synth", help="synthesize a project: Yosys on its RTL, or Vitis/Vivado where installed")
    y.add_argument("project", type=Path)
    y.add_argument(
        "--tool", default="auto", choices=("auto", "yosys", "vitis", "vivado"), help="auto: vendor if installed"
    )
    y.add_argument("--style", default=None, choices=("da", "mult"), help="rewrite the RTL in this style first")
    y.add_argument("--jobs", type=int, default=None, help="Yosys runs at once (default: one per core)")
    y.add_argument("--timeout", type=float, default=3600.0, help="seconds one Yosys run may take")
    y.add_argument("--logic", action="store_true", help="vendor flow: Vivado logic synthesis after C synthesis")
    y.add_argument("--compare", action="store_true", help="print the surrogate's estimate beside the figures")
    y.set_defaults(run=_synth)
    rp = sub.add_parser("report", help="print a project's synthesis report and where its HTML page is")
    rp.add_argument("project", type=Path)
    rp.add_argument("--compare", action="store_true", help="print the surrogate's estimate beside the figures")
    rp.set_defaults(run=_report)
    b = sub.add_parser("boards", help="list the boards qfx targets")
    b.set_defaults(run=_boards)
    return p


def main(argv: list[str] | None = None) -> int:
    """Exit 0 on success, 2 for refused input or a failing tool (one line naming it), 3 for a failed proof,
    1 for an internal error (one line; QFX_DEBUG=1 shows the traceback)."""
    from qfx.testbench.verify import ProofError

    try:
        args = parser().parse_args(argv)
    except SystemExit as e:  # argparse has printed the usage error (code 2), or --help / --version (0)
        return int(e.code or 0)
    try:
        args.run(args)
    except ValueError as e:
        print(f"qfx {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ProofError as e:
        print(f"qfx {args.command}: proof failed: {e}", file=sys.stderr)
        return 3
    except OSError as e:  # a file the user named cannot be read or written
        print(f"qfx {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qfx {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get("QFX_DEBUG"):
            raise
        reason = (str(e).strip().splitlines() or [""])[-1][:300]
        print(
            f"qfx {args.command}: internal error: {type(e).__name__}: {reason} (QFX_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
