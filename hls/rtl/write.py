"""Writing a converted project's RTL (`DIR/rtl/`): da4ml's pipelined core for the traced graph, and the
qfx top module from `hls/templates/qfx_top.v` that gives it a uniform, documented port and a valid signal."""

from __future__ import annotations

import re
import shutil
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from da4ml.codegen import VerilogModel
from da4ml.trace import to_pipeline
from da4ml.types import QInterval, minimal_kif

from qfx.hls.project import Project
from qfx.hls.rtl.arrays import kif
from qfx.hls.rtl.trace import Traced, trace

RTL_DIR = "rtl"
TOP = "qfx_top"
CORE = "qfx_core"
TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "qfx_top.v"


@dataclass(frozen=True)
class Element:
    """One element of the core's packed bus: bits [offset, offset+width) hold value * 2^frac."""

    signed: bool
    width: int
    frac: int
    offset: int


def layout(qints: list[QInterval]) -> list[Element]:
    """da4ml packs elements back to back, each in its minimal (sign, integer, fraction) width."""
    out, offset = [], 0
    for q in qints:
        k, i, f = minimal_kif(q)
        width = int(k) + i + f
        out.append(Element(bool(k), width, f, offset))
        offset += width
    return out


def _slice(bus: str, elem: Element, lo: int, hi: int) -> str:
    """Bits lo..hi (inclusive) of the element's value scaled to 2^-frac, sign- or zero-extended above."""
    parts = []
    top = min(hi, elem.width - 1)
    if hi > top:
        fill = f"{bus}[{elem.offset + elem.width - 1}]" if elem.signed and elem.width else "1'b0"
        parts.append(f"{{{hi - top}{{{fill}}}}}")
    if top >= lo:
        parts.append(f"{bus}[{elem.offset + top}:{elem.offset + lo}]")
    return "{" + ", ".join(parts) + "}" if len(parts) > 1 else parts[0]


def _uniform(elem: Element, frac: int, width: int, bus: str) -> str:
    """The element as a `width`-bit word with `frac` fractional bits (frac >= the element's own)."""
    shift = frac - elem.frac
    parts = []
    body = width - shift
    if body > 0:
        parts.append(_slice(bus, elem, 0, body - 1) if elem.width else f"{{{body}{{1'b0}}}}")
    if shift > 0:
        parts.append(f"{{{shift}{{1'b0}}}}")
    return "{" + ", ".join(parts) + "}" if len(parts) > 1 else parts[0]


def _binary(value: int, width: int) -> str:
    return f"{width}'b{value & ((1 << width) - 1):0{width}b}"


def tie_weights(elems: list[Element], weights: np.ndarray, bus: str) -> list[str]:
    """Assignments tying the core's weight inputs (the multiplier style's) to their constant values."""
    lines = [
        f"    assign {bus}[{e.offset + e.width - 1}:{e.offset}] = {_binary(round(float(w) * 2.0**e.frac), e.width)};"
        for e, w in zip(elems, weights, strict=True)
        if e.width
    ]
    if lines:
        lines.insert(0, "    // Multiplier style: each weight is a constant operand of a plain x * w product.")
    return lines


def _format_name(signed: bool, width: int, frac: int) -> str:
    return f"ap_{'' if signed else 'u'}fixed<{width},{width - frac}>"


def _valid_next(latency: int) -> str:
    return "in_valid" if latency == 1 else f"{{valid_pipe[{latency - 2}:0], in_valid}}"


def render_top(traced: Traced, inp: list[QInterval], out: list[QInterval], latency: int, banner: str) -> dict:
    """The top module's text and its port description."""
    fmt = traced.input_format
    f = kif(fmt)[2]
    n_in = int(np.prod(traced.input_shape))
    in_elems, out_elems = layout(inp), layout(out)
    in_assigns = []
    for n, elem in enumerate(in_elems[:n_in]):
        if not elem.width:
            continue
        # the slot holds x * 2^f in fmt.width bits; the core wants x * 2^elem.frac
        slot = Element(fmt.signed, fmt.width, f, n * fmt.width)
        drop = f - elem.frac
        text = _slice("in_data", slot, drop, drop + elem.width - 1)
        in_assigns.append(f"    assign core_in[{elem.offset + elem.width - 1}:{elem.offset}] = {text};")
    weight_assigns = tie_weights(in_elems[n_in:], traced.weights, "core_in")
    out_signed = any(e.signed for e in out_elems)
    out_frac = max(e.frac for e in out_elems)
    out_width = max(1, max(e.width - e.frac for e in out_elems) + out_frac)
    out_assigns = [
        f"    assign out_data[{(n + 1) * out_width - 1}:{n * out_width}] = "
        f"{_uniform(e, out_frac, out_width, 'core_out')};"
        for n, e in enumerate(out_elems)
    ]
    core_in_bits = sum(e.width for e in in_elems)
    core_out_bits = sum(e.width for e in out_elems)
    text = string.Template(TEMPLATE.read_text()).substitute(
        banner=banner,
        top=TOP,
        core=CORE,
        n_in=n_in,
        n_out=len(out_elems),
        in_format=str(fmt),
        in_elem=fmt.width,
        out_format=_format_name(out_signed, out_width, out_frac),
        out_elem=out_width,
        latency=latency,
        in_msb=n_in * fmt.width - 1,
        out_msb=len(out_elems) * out_width - 1,
        core_in_msb=max(core_in_bits, 1) - 1,
        core_out_msb=max(core_out_bits, 1) - 1,
        in_assigns="\n".join(in_assigns),
        weight_assigns="\n".join(weight_assigns),
        out_assigns="\n".join(out_assigns),
        valid_msb=latency - 1,
        valid_next=_valid_next(latency),
    )
    ports = {
        "input": {"elements": n_in, "width": fmt.width, "frac_bits": f, "signed": fmt.signed, "format": str(fmt)},
        "output": {
            "elements": len(out_elems),
            "width": out_width,
            "frac_bits": out_frac,
            "signed": out_signed,
            "format": _format_name(out_signed, out_width, out_frac),
        },
    }
    return {"text": text, "ports": ports, "weights": len(traced.weights)}


def used_sources(src: Path) -> list[Path]:
    """da4ml's generated modules plus only those of its static library they instantiate (Icarus cannot
    parse the unused lookup-table module)."""
    generated = sorted(p for p in src.glob("*.v") if not p.name.endswith("_wrapper.v"))
    text = "\n".join(p.read_text() for p in generated)
    static = [p for p in sorted((src / "static").glob("*.v")) if re.search(rf"\b{p.stem}\b\s*#", text)]
    return static + generated


def write_rtl(project: Project, style: str = "da", latency_cutoff: float = 5.0) -> dict[str, Any]:
    """Trace the project's prepared graph, write DIR/rtl/ and return its description (for qfx.json's "rtl")."""
    project_dir = project.path
    part, clock_ns = project["part"], project["clock_ns"]
    traced = trace(project.graph, style)
    pipe = to_pipeline(traced.comb, latency_cutoff, verbose=False)
    latency = len(pipe.solutions) + 1  # a register before each stage and one after the last
    final, staging = project_dir / RTL_DIR, project_dir / f".{RTL_DIR}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        kwargs = {"part_name": part} if part else {}
        VerilogModel(pipe, CORE, staging, clock_period=clock_ns, print_latency=False, **kwargs).write()
        top = render_top(
            traced,
            pipe.inp_qint,
            pipe.out_qint,
            latency,
            f"qfx {style} RTL: pipelined core by da4ml, this top from hls/templates/qfx_top.v",
        )
        (staging / "src" / f"{TOP}.v").write_text(top["text"])
        files = [str(p.relative_to(staging)) for p in used_sources(staging / "src")]
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {
        "style": style,
        "top": TOP,
        "dir": RTL_DIR,
        "files": [f"{RTL_DIR}/{f}" for f in files],
        "latency": latency,
        "ii": 1,
        "stages": len(pipe.solutions),
        "latency_cutoff": latency_cutoff,
        "weight_ports": top["weights"],
        "da4ml_cost": float(pipe.cost),
        **top["ports"],
    }
