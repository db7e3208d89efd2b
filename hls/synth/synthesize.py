"""`qfx synth`: synthesize a converted project with the open flow (Yosys on its RTL, the whole design and
each layer alone) or the vendor flow (hls4ml's own Vitis/Vivado build), and write `DIR/reports/`."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from threading import Event
from typing import Any

from qfx import boards
from qfx.hls.project import Project
from qfx.hls.rtl.trace import STYLES, Tracer
from qfx.hls.rtl.write import write_rtl
from qfx.hls.synth import html, report, vendor, yosys
from qfx.hls.synth.layers import Layer, layers, write_layer

TOOLS = ("auto", "yosys", *vendor.TOOLS)
LAYER_METHOD = (
    "Yosys: the whole design synthesized flattened for the total; each layer traced and pipelined alone "
    "(its inputs as ports in the exact formats they have in the design) and synthesized on its own. "
    "The layers need not add up to the total: each layer alone registers its inputs and outputs, which in "
    "the design are one register between neighbours (so the layers' FFs exceed the total's), synthesis of "
    "the whole design shares and simplifies logic across layer boundaries, and the total also holds the "
    "top module's valid pipeline."
)


def pick_tool(tool: str, backend: str) -> str:
    """`auto`: the vendor flow where the tool of the project's hls4ml backend is installed (hls4ml writes
    a different build script per backend), the open flow everywhere else."""
    if tool not in TOOLS:
        raise ValueError(f"tool {tool!r} is not one of {', '.join(TOOLS)}")
    if tool == "auto":
        return backend if backend in vendor.TOOLS and vendor.find_tool(backend) else "yosys"
    if tool != "yosys" and vendor.find_tool(tool) is None:
        raise ValueError(f"{tool} is not installed here (nothing on PATH runs it); use --tool yosys")
    return tool


def _rtl(project: Project, style: str | None, say: Callable[[str], None]) -> dict[str, Any]:
    """The project's RTL description, rewritten first in `style` when one is given."""
    if style is not None:
        if style not in STYLES:
            raise ValueError(f"style {style!r} is not one of {', '.join(STYLES)}")
        if project.rtl is None or project.rtl["style"] != style:
            say(f"writing {style} RTL (da4ml)")
            project.replace_rtl(write_rtl(project, style))
    rtl = project.rtl
    if rtl is None:
        raise ValueError(f"{project.path}: no RTL (converted with --rtl none); pass --style da or --style mult")
    missing = [f for f in rtl.get("files", []) if not (project.path / f).is_file()]
    if missing or "files" not in rtl:
        raise ValueError(
            f"{project.path}: the RTL is incomplete ({missing[0] if missing else 'no file list'}); run qfx rtl"
        )
    return rtl


def _yosys(project: Project, board: boards.Board, style: str | None, jobs: int, timeout: float, say) -> tuple:
    if board.synth_family is None:
        raise ValueError(f"board {board.name} ({board.part}) has no Yosys synth_xilinx family")
    rtl = _rtl(project, style, say)
    if not yosys.compiled():
        say("first use of Yosys (YoWASP): compiling it to machine code once, ~45 s (cached afterwards)")
    tool_version = yosys.version()
    tracer = Tracer(project.graph, rtl["style"])
    tracer.run()
    cut = layers(project.graph, project["layers"])
    work = Path(f".synth.{os.getpid()}")
    root = project.path
    try:
        runs: list[tuple[str, list[str], str]] = [("(total)", list(rtl["files"]), rtl["top"])]
        for n, layer in enumerate(cut):
            folder = work / f"layer{n}"
            files = write_layer(tracer, layer, root / folder, rtl.get("latency_cutoff", 5.0), project["clock_ns"])
            runs.append((layer.name, [str(folder / f) for f in files], "layer_top"))
        say(f"Yosys {tool_version}: synth_xilinx -family {board.synth_family}, the design and {len(cut)} layers")
        results: list[yosys.Synthesis | None] = [None] * len(runs)
        stop = Event()
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {
                pool.submit(
                    yosys.synthesize, root, files, top, board.synth_family, str(work / f"run{n}"), timeout, stop
                ): n
                for n, (_, files, top) in enumerate(runs)
            }
            try:
                for done, future in enumerate(as_completed(futures), 1):
                    n = futures[future]
                    results[n] = future.result()
                    c = results[n].counts
                    figures = f"LUT {c['LUT']:,.0f}  FF {c['FF']:,.0f}  DSP {c['DSP']:,.0f}"
                    say(f"  [{done}/{len(runs)}] {runs[n][0]}: {figures}")
            except BaseException:  # a failed run (or Ctrl-C): the report is void, so stop the others now
                stop.set()
                for pending in futures:
                    pending.cancel()
                raise
    finally:
        shutil.rmtree(root / work, ignore_errors=True)
    logs = {"yosys.log": results[0].log, **{f"yosys_layer{n}.log": r.log for n, r in enumerate(results[1:])}}
    return _measured(rtl, board, tool_version, cut, results), logs


def _measured(
    rtl: dict, board: boards.Board, tool_version: str, cut: list[Layer], results: list[yosys.Synthesis]
) -> report.Measured:
    """The total from the first run (the whole design), a layer from each of the others."""
    total = results[0]
    notes = []
    uncounted = {k: v for r in results for k, v in r.uncounted.items()}
    if uncounted:
        notes.append(f"cells of types not counted: {', '.join(f'{k} x{v}' for k, v in sorted(uncounted.items()))}")
    notes.append(
        "logic_depth: cells (LUTs, carry cells) on the longest register-to-register path (Yosys ltp); "
        "no placement or routing, so no timing"
    )
    return report.Measured(
        tool="yosys",
        tool_version=tool_version,
        style=rtl["style"],
        top=rtl["top"],
        family=board.synth_family,
        total=total.counts,
        layers=[
            {"name": layer.name, **r.counts, "nodes": layer.nodes} for layer, r in zip(cut, results[1:], strict=True)
        ],
        latency_cycles=rtl["latency"],
        ii=rtl["ii"],
        layer_method=LAYER_METHOD,
        notes=notes,
    )


def synth(
    project_dir: str | Path,
    tool: str = "auto",
    style: str | None = None,
    jobs: int | None = None,
    timeout: float = 3600.0,
    logic: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Synthesize the project and write `reports/synth.json` and `reports/index.html` (only when
    everything succeeded; an earlier report stays until then). Returns the report."""
    say = progress or (lambda _: None)
    project = Project(project_dir)
    for key in ("board", "layers", "clock_ns"):
        if key not in project.manifest:
            raise ValueError(f"{project.path}: qfx.json has no {key!r} (written by an older qfx?); convert again")
    board = boards.get(project["board"])
    chosen = pick_tool(tool, project.manifest.get("backend", "vitis"))
    start = time.monotonic()
    if chosen == "yosys":
        measured, logs = _yosys(project, board, style, jobs or os.cpu_count() or 1, timeout, say)
    else:
        if style is not None:
            raise ValueError(f"--style applies to the open flow's RTL; {chosen} synthesizes hls4ml's own HLS code")
        measured, log = vendor.run(project, chosen, logic, say)
        logs = {f"{chosen}.log": log}
    result = report.build(measured, board, project["clock_ns"], time.monotonic() - start)
    report.write(project.path, result, html.render(result, project.manifest), logs)
    return result
