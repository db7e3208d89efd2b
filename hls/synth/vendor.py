"""The vendor flow of `qfx synth`: hls4ml's own build script run by Vitis HLS or Vivado HLS (C synthesis, and
optionally Vivado logic synthesis), and parsers of the reports those tools write."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from qfx.hls.project import PROJECT, PROJECT_NAME, Project
from qfx.hls.synth.report import Measured, counts

TOOLS = ("vitis", "vivado")
TOOL_NAMES = {"vitis": "Vitis HLS", "vivado": "Vivado HLS"}
# The command lines hls4ml's backends build with, in order of preference: Vitis 2024.1+ runs HLS scripts
# through vitis-run; vitis_hls is the older (and deprecated) name.
_COMMANDS = {
    "vitis": (("vitis-run", "--mode", "hls", "--tcl"), ("vitis_hls", "-f")),
    "vivado": (("vivado_hls", "-f"),),
}
# hls4ml's build script opens `<project>_prj/solution1`; each module's C-synthesis report is
# `<module>_csynth.xml` in its syn/report.
REPORT_DIR = Path(f"{PROJECT_NAME}_prj") / "solution1" / "syn" / "report"
UTILIZATION = "vivado_synth.rpt"  # what hls4ml's vivado_synth.tcl writes with report_utilization
# hls4ml's build options: C synthesis of a fresh solution; no C simulation (qfx has proven it already).
BUILD_OPTIONS = {
    "reset": 1,
    "csim": 0,
    "synth": 1,
    "cosim": 0,
    "validation": 0,
    "export": 0,
    "vsynth": 0,
    "fifo_opt": 0,
}
# Every layer's config struct is `config<N>` or `<Kind>_config<N>` (N: the hls4ml layer index); the tools
# keep it in the names of the modules they make of the layer's template function.
_CONFIG = re.compile(r"config(\d+)", re.IGNORECASE)


def find_tool(tool: str) -> list[str] | None:
    """The command line prefix that runs hls4ml's `build_prj.tcl` with `tool`, or None where it is not on PATH."""
    if tool not in _COMMANDS:
        raise ValueError(f"tool {tool!r} is not one of {', '.join(TOOLS)}")
    for name, *args in _COMMANDS[tool]:
        path = shutil.which(name)
        if path:
            return [path, *args]
    return None


# hls4ml's parse_vivado_report (hls4ml/report/vivado_report.py) is not reused for either report: it reads a
# whole project folder (project.tcl, hls.app), prints, and returns None where a file is missing; it reads only
# the top's totals (no module hierarchy, no tool version); and it files Vivado's "Block RAM Tile" count (36K
# tiles) under BRAM_18K, with no carry cells. The element paths and the DSP48E/DSP spelling below are its own.


def _xml(path: Path) -> ET.Element:
    if not path.is_file():
        raise ValueError(f"{path}: no such C-synthesis report")
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{path}: not a readable C-synthesis report ({e})") from None


def _number(text: str | None) -> float:
    """A report's count: int where whole (BRAM may be fractional), 0 where the report has none."""
    value = float(text) if text else 0.0
    return int(value) if value.is_integer() else value


def _cycles(text: str | None) -> int | None:
    """A latency or interval in cycles; None where the tool could not bound it ("undef", "?")."""
    return int(text) if text and text.strip().isdigit() else None


def _resources(root: ET.Element, where: Path) -> dict[str, float]:
    area = root.find("AreaEstimates/Resources")
    if area is None:
        raise ValueError(f"{where}: no AreaEstimates/Resources")
    dsp = area.findtext("DSP") or area.findtext("DSP48E")  # Vitis HLS / Vivado HLS
    return counts(
        {
            "LUT": _number(area.findtext("LUT")),
            "FF": _number(area.findtext("FF")),
            "DSP": _number(dsp),
            "BRAM18": _number(area.findtext("BRAM_18K")),
            "URAM": _number(area.findtext("URAM")),
        }
    )


def _modules(report_dir: Path, top: str) -> list[str]:
    """The module of each instance the top holds directly. Vitis HLS lists them in csynth.xml's
    RTLDesignHierarchy; Vivado HLS's XML has no hierarchy, so they come from the top's text report (the
    Instance table under Utilization Estimates)."""
    summary = report_dir / "csynth.xml"
    if summary.is_file():
        hierarchy = _xml(summary).find("RTLDesignHierarchy/TopModule")
        if hierarchy is not None:
            return [i.findtext("ModuleName", "") for i in hierarchy.findall("InstancesList/Instance")]
    text = report_dir / f"{top}_csynth.rpt"
    if not text.is_file():
        raise ValueError(f"{report_dir}: no csynth.xml hierarchy and no {text.name} to read the top's modules from")
    table = text.read_text(errors="replace").partition("== Utilization Estimates")[2].partition("* Instance:")[2]
    modules = []
    for line in table.splitlines()[1:]:
        line = line.strip()
        if line.startswith("*"):  # the next table (DSP48E, Memory, ...)
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|") and len(cells) > 2 and cells[0] not in ("Instance", "Total"):
            modules.append(cells[1])
    return modules


def parse_csynth(report_dir: Path, top: str = PROJECT_NAME, configs: dict[int, str] | None = None) -> dict:
    """The C-synthesis reports of `top` in a solution's syn/report folder: totals, latency and II of the top,
    and one entry per layer for the modules the top instantiates directly (each from its own report).

    A module is named for the hls4ml layer whose config index its name carries (`configs`: index -> layer
    name, see `layer_configs`), else by its own name; instances of one layer are summed, and layers are
    listed in the model's order.
    """
    report_dir = Path(report_dir)
    path = report_dir / f"{top}_csynth.xml"
    root = _xml(path)
    latency = "PerformanceEstimates/SummaryOfOverallLatency/"
    layers: dict[str, dict] = {}
    for module in _modules(report_dir, top):
        found = _CONFIG.search(module)
        name = (configs or {}).get(int(found[1]), module) if found else module
        figures = _resources(_xml(report_dir / f"{module}_csynth.xml"), report_dir / f"{module}_csynth.xml")
        layer = layers.setdefault(name, {"name": name, **counts(), "modules": []})
        for k, v in figures.items():
            layer[k] += v
        layer["modules"].append(module)
    notes = [] if layers else [f"hls4ml's layer functions were inlined into {top}: no per-layer figures"]
    # In the model's order where known (Vivado HLS sorts its instance table by name).
    order = {name: n for n, name in enumerate(dict.fromkeys((configs or {}).values()))}
    return {
        "tool_version": root.findtext("ReportVersion/Version", ""),
        "top": root.findtext("UserAssignments/TopModelName", top),
        "total": {**_resources(root, path), "logic_depth": None},
        "latency_cycles": _cycles(root.findtext(latency + "Worst-caseLatency")),
        "ii": _cycles(root.findtext(latency + "Interval-max")),
        "estimated_clock_ns": float(root.findtext("PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod")),
        "target_clock_ns": float(root.findtext("UserAssignments/TargetClockPeriod")),
        "layers": sorted(layers.values(), key=lambda layer: order.get(layer["name"], len(order))),
        "notes": notes,
    }


def layer_configs(top_cpp: str) -> dict[int, str]:
    """hls4ml's config index -> layer name, from the top function hls4ml writes: each layer's call takes its
    config struct as a template argument and ends `; // name`, or follows a `// name` line where the layer
    takes several calls."""
    names: dict[int, str] = {}
    current = None
    for line in top_cpp.splitlines():
        alone = re.fullmatch(r"\s*//\s*(\w+)\s*", line)
        if alone:
            current = alone[1]
            continue
        call = re.search(r"<([^()]*)>\s*\(", line)
        comment = re.search(r";\s*//\s*(\w+)\s*$", line)
        for arg in call[1].split(",") if call else []:
            config = re.fullmatch(r"\s*\w*config(\d+)\s*", arg)
            if config and (comment or current):
                names.setdefault(int(config[1]), comment[1] if comment else current)
    return names


def _site(text: str, *labels: str) -> float | None:
    """The Used column of the first table row labelled `label` (a trailing * is a footnote mark)."""
    for label in labels:
        found = re.search(rf"^\|\s*{re.escape(label)}\*?\s*\|\s*([\d.]+)\s*\|", text, re.MULTILINE)
        if found:
            return float(found[1])
    return None


def parse_utilization(text: str) -> dict[str, float]:
    """Vivado `report_utilization` text (7-series "Slice" or UltraScale "CLB" spelling) as RESOURCES counts.
    "Block RAM Tile" counts 36K tiles, so BRAM18 is twice it; CARRY is CARRY8 or CARRY4 cells."""
    lut, ff = _site(text, "CLB LUTs", "Slice LUTs"), _site(text, "CLB Registers", "Slice Registers")
    if lut is None or ff is None:
        raise ValueError("not a Vivado report_utilization text: no CLB/Slice LUTs and Registers rows")
    return counts(
        {
            "LUT": int(lut),
            "FF": int(ff),
            "DSP": int(_site(text, "DSPs") or 0),
            "BRAM18": round(2 * (_site(text, "Block RAM Tile") or 0)),
            "URAM": int(_site(text, "URAM") or 0),
            "CARRY": int(_site(text, "CARRY8", "CARRY4") or 0),
        }
    )


def _errors(log: str) -> str:
    """The tool's own ERROR lines (first few), for a one-line failure message."""
    lines = list(dict.fromkeys(line.strip()[:300] for line in log.splitlines() if "ERROR" in line))
    return ": " + "; ".join(lines[:5]) if lines else ""


def _run_logged(command: list[str], cwd: Path, log_path: Path, progress: Callable[[str], None]) -> tuple[int, str]:
    """Run `command`, its output (both streams) into `log_path` as it comes; hls4ml's stage banners
    (`***** C/RTL SYNTHESIS *****`) go to `progress`."""
    lines = []
    with (
        open(log_path, "w") as log,
        subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        ) as process,
    ):
        for line in process.stdout:
            log.write(line)
            log.flush()
            lines.append(line)
            if line.startswith("*****"):
                progress(line.strip("* \n"))
    return process.returncode, "".join(lines)


def run(project: Project, tool: str, logic: bool, progress: Callable[[str], None]) -> tuple[Measured, str]:
    """Run hls4ml's build script in `DIR/hls4ml_prj` with `tool`: C synthesis, and with `logic` Vivado logic
    synthesis of its RTL (hls4ml's vivado_synth.tcl). Returns the measurement and the tool's log."""
    backend = project.manifest.get("backend")
    if backend != tool:
        # hls4ml writes a different build script per backend (Vitis reads build_opt.tcl, Vivado its arguments)
        raise ValueError(
            f"{project.path} holds an hls4ml {backend} project; synthesize it with {backend}, "
            f"or convert again with backend {tool}"
        )
    command = find_tool(tool)
    if command is None:
        names = " or ".join(c[0] for c in _COMMANDS[tool])
        raise ValueError(f"{TOOL_NAMES[tool]} is not installed here ({names} is not on PATH)")
    if logic and shutil.which("vivado") is None:
        raise ValueError("logic synthesis runs Vivado (hls4ml's vivado_synth.tcl), and vivado is not on PATH")
    hls_dir = project.path / PROJECT
    if not (hls_dir / "build_prj.tcl").is_file():
        raise ValueError(f"{hls_dir}: no build_prj.tcl (hls4ml's build script); convert again")
    report_dir, utilization = hls_dir / REPORT_DIR, hls_dir / UTILIZATION
    # An earlier run's reports must not pass for this one's.
    shutil.rmtree(report_dir, ignore_errors=True)
    utilization.unlink(missing_ok=True)
    options = {**BUILD_OPTIONS, "vsynth": int(logic)}
    if tool == "vitis":
        body = "".join(f"    {k:<10} {v}\n" for k, v in options.items())
        (hls_dir / "build_opt.tcl").write_text(f"array set opt {{\n{body}}}\n")
        command.append("build_prj.tcl")
    else:
        command += ["build_prj.tcl", " ".join(f"{k}={v}" for k, v in options.items())]
    log_path = hls_dir / f"qfx_synth_{tool}.log"
    stages = "C synthesis and Vivado logic synthesis" if logic else "C synthesis"
    progress(f"{TOOL_NAMES[tool]}: {stages} with hls4ml's build_prj.tcl (log: {log_path})")
    status, log = _run_logged(command, hls_dir, log_path, progress)
    if status:
        raise ValueError(f"{TOOL_NAMES[tool]} failed (exit status {status}){_errors(log)}; log: {log_path}")
    top_cpp = hls_dir / "firmware" / f"{PROJECT_NAME}.cpp"
    configs = layer_configs(top_cpp.read_text()) if top_cpp.is_file() else {}
    try:
        csynth = parse_csynth(report_dir, PROJECT_NAME, configs)
        if logic and not utilization.is_file():
            raise ValueError(f"{utilization}: no Vivado utilization report")
        post_synthesis = parse_utilization(utilization.read_text()) if logic else None
    except ValueError as e:
        raise ValueError(f"{TOOL_NAMES[tool]} exited 0 but {e}{_errors(log)}; log: {log_path}") from None
    if post_synthesis is None:
        total, source = csynth["total"], "C-synthesis estimates (no logic synthesis run)"
    else:
        total = {**post_synthesis, "logic_depth": None}
        source = f"Vivado post-synthesis utilization ({UTILIZATION}: synth_design, opt_design)"
    clock = f"{csynth['estimated_clock_ns']} ns clock period (target {csynth['target_clock_ns']} ns)"
    notes = [*csynth["notes"], f"total: {source}", f"C synthesis estimates a {clock}"]
    if csynth["layers"]:
        method = (
            f"{TOOL_NAMES[tool]} C-synthesis estimates of each module the top instantiates directly (its own "
            "<module>_csynth.xml), named for the hls4ml layer whose config it is built from; what the top holds "
            "itself (FIFOs between dataflow stages, control) is in no layer"
        )
        if logic:
            method += "; the total is Vivado's post-synthesis count, so the layers need not add up to it"
    else:
        method = "none: hls4ml's layer functions were inlined into the top, which C synthesis reports as one module"
    measured = Measured(
        tool=tool,
        tool_version=csynth["tool_version"],
        style="hls",
        top=csynth["top"],
        family=project.manifest["family"],
        total=total,
        layers=csynth["layers"],
        latency_cycles=csynth["latency_cycles"],
        ii=csynth["ii"],
        layer_method=method,
        notes=notes,
    )
    return measured, log
