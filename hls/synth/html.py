"""The synthesis report page, `DIR/reports/index.html`: the schema-1 report and the project's bit widths as one
self-contained file (inline CSS bars, no scripts, no network) that opens anywhere, including offline."""

from __future__ import annotations

import html
import math
import re
import string
from pathlib import Path
from typing import Any

from qfx.boards import CEILINGS
from qfx.hls.synth.report import RESOURCES

TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "synth_report.html"
LAYER_BARS = ("LUT", "FF", "DSP", "CARRY")  # the per-layer figures drawn as shares of the total
_FIXED = re.compile(r"(?:ap_)?(u?)fixed<\s*(\d+)\s*,\s*(-?\d+)\s*(?:,[^<>]*)?>")
_INT = re.compile(r"(?:ap_)?(u?)int<\s*(\d+)\s*>")


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def _pct(value: float) -> str:
    return "the board has none" if math.isinf(value) else f"{value:.1f} %"


def bit_width(text: str) -> tuple[int, int, bool] | None:
    """(width, integer bits, signed) of an ap_fixed/ap_int type in hls4ml's or Vitis's spelling
    (`fixed<8,4,RND,SAT,0>`, `ap_ufixed<6,3>`, `ap_int<8>`), or None where it is something else."""
    if m := _FIXED.fullmatch(text.strip()):
        unsigned, width, integer = m.groups()
    elif m := _INT.fullmatch(text.strip()):
        unsigned, width = m.groups()
        integer = width
    else:
        return None
    return (int(width), int(integer), not unsigned) if int(width) > 0 else None


def _summary(report: dict[str, Any], manifest: dict[str, Any]) -> str:
    clock = report["clock_ns"]
    latency = report["latency_cycles"]
    items = [
        ("Model", manifest.get("source", {}).get("path")),
        ("Project", manifest.get("built_in")),
        ("Board", f"{report['board']} ({report['part']}, {report['family']})"),
        ("Tool", f"{report['tool']} {report['tool_version']}"),
        ("RTL style", report["style"]),
        ("Top", report["top"]),
        ("Clock", f"{clock:g} ns ({1000 / clock:.1f} MHz)" if clock else None),
        ("Latency", f"{latency} cycles ({latency * clock:g} ns)" if latency is not None else "not reported"),
        ("II", report["ii"] if report["ii"] is not None else "not reported"),
        ("Logic depth", report["total"].get("logic_depth")),
        ("Synthesis", f"{report['seconds']:g} s"),
    ]
    if "backend" in manifest:
        items.append(
            (
                "hls4ml",
                f"{manifest['backend']} backend, io {manifest.get('io')}, {manifest.get('strategy')} strategy, "
                f"reuse {manifest.get('reuse')}",
            )
        )
    return "\n".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items if v is not None)


def _verdict(report: dict[str, Any]) -> tuple[str, str]:
    if report["fits"]:
        return "fits", f"Fits on {report['board']}: every resource is under its ceiling."
    over = []
    for key in report["over_ceiling"]:
        used = report["utilization"][key]
        over.append(
            f"{key} ({_pct(used)})" if math.isinf(used) else f"{key} {_pct(used)} > {report['ceilings'][key]:g} %"
        )
    return "over", f"Does not fit on {report['board']}: over the ceiling: {', '.join(over)}."


def _utilization(report: dict[str, Any]) -> str:
    rows = []
    for key in CEILINGS:
        used, ceiling = report["utilization"].get(key, 0.0), report["ceilings"][key]
        over = key in report["over_ceiling"]
        flag = ' <span class="flag">over ceiling</span>' if over else ""
        rows.append(
            f'<div class="row{" over" if over else ""}" data-resource="{_e(key)}">'
            f'<span class="name">{_e(key)}</span>'
            f'<span class="bar"><span class="fill" style="width:{min(used, 100):.2f}%"></span>'
            f'<span class="ceiling" style="left:{ceiling:g}%" title="ceiling {ceiling:g} %"></span></span>'
            f'<span class="value">{_num(report["total"].get(key, 0))} ({_pct(used)}; ceiling {ceiling:g} %)'
            f"{flag}</span></div>"
        )
    return "\n".join(rows)


def _layer_cells(values: dict[str, Any], total: dict[str, Any], bars: bool) -> str:
    cells = []
    for key in RESOURCES:
        value = values.get(key, 0)
        bar = ""
        if bars and key in LAYER_BARS:
            # share of the design total, capped: per-layer figures may overlap or exceed it
            scale = max(total.get(key, 0), value)
            share = 100 * value / scale if scale > 0 else 0.0
            bar = (
                f'<span class="mini" title="{share:.1f} % of the total">'
                f'<span class="share" style="width:{share:.2f}%"></span></span>'
            )
        cells.append(f'<td class="n">{_num(value)}{bar}</td>')
    return "".join(cells)


def _layer_rows(report: dict[str, Any]) -> str:
    total = report["total"]
    rows = [
        f'<tr data-layer="{_e(layer["name"])}"><td><code>{_e(layer["name"])}</code></td>'
        f"{_layer_cells(layer, total, bars=True)}</tr>"
        for layer in report["layers"]
    ]
    difference = _layer_cells(report["layer_difference"], total, bars=False)
    rows.append(f'<tr class="difference"><td>not in any layer</td>{difference}</tr>')
    rows.append(f'<tr class="total"><td>total</td>{_layer_cells(total, total, bars=False)}</tr>')
    return "\n".join(rows)


def _difference(report: dict[str, Any]) -> str:
    nonzero = {k: v for k, v in report["layer_difference"].items() if v}
    if not nonzero:
        return "The layers' figures add up to the design's total."
    parts = ", ".join(f"{_e(k)} {_num(v)}" for k, v in nonzero.items())
    return (
        f"“Not in any layer” is the total minus the layers' sum ({parts}): positive where the design has logic "
        "outside its layers (the top, glue between layers), negative where the layers' figures count logic that "
        "synthesis of the whole design shares or removes. How the layers were measured is said above."
    )


def _width_bar(text: str, widest: int) -> str:
    parsed = bit_width(text)
    if parsed is None:
        return '<span class="legend">not a fixed-point type</span>'
    width, integer, signed = parsed
    int_bits = min(max(integer, 0), width)
    label = f"{width} bits: {integer} integer, {width - integer} fraction, {'signed' if signed else 'unsigned'}"
    return (
        f'<div class="track"><div class="width" title="{_e(label)}" style="width:{100 * width / widest:.2f}%">'
        f'<span class="int" style="flex:{int_bits}"></span><span class="frac" style="flex:{width - int_bits}"></span>'
        f'</div></div><span class="legend">{_e(label)}</span>'
    )


def _bit_rows(layers: list[dict[str, Any]], widest: int) -> str:
    rows = []
    for layer in layers:
        types = list(layer.get("types", {}).items()) or [("—", "")]
        head = (
            f'<td rowspan="{len(types)}"><code>{_e(layer["name"])}</code></td>'
            f'<td rowspan="{len(types)}">{_e(layer.get("class", ""))}</td>'
        )
        for i, (role, text) in enumerate(types):
            bar = _width_bar(text, widest) if text else ""
            cells = f"<td>{_e(role)}</td><td><code>{_e(text)}</code></td><td>{bar}</td>"
            if i == 0:
                rows.append(f'<tr data-hls-layer="{_e(layer["name"])}">{head}{cells}</tr>')
            else:
                rows.append(f"<tr>{cells}</tr>")
    return "\n".join(rows)


def render(report: dict[str, Any], manifest: dict[str, Any]) -> str:
    """The page for a schema-1 `report` (see `report.build`) of the project whose `qfx.json` is `manifest`."""
    layers = manifest.get("layers", [])
    widths = [p[0] for layer in layers for t in layer.get("types", {}).values() if (p := bit_width(t))]
    widest = max(widths, default=1)
    verdict_class, verdict = _verdict(report)
    model = Path(manifest.get("source", {}).get("path", report["top"])).name
    notes = "".join(f"<li>{_e(n)}</li>" for n in report["notes"])
    return string.Template(TEMPLATE.read_text()).substitute(
        title=_e(f"qfx synthesis: {model} on {report['board']}"),
        verdict_class=verdict_class,
        verdict=_e(verdict),
        summary=_summary(report, manifest),
        utilization=_utilization(report),
        layer_method=_e(report["layer_method"]),
        resource_heads="".join(f'<th class="n">{k}</th>' for k in RESOURCES),
        layer_rows=_layer_rows(report),
        difference=_difference(report),
        input_format=_e(manifest.get("input", {}).get("format", "—")),
        output_format=_e(manifest.get("output", {}).get("type", "—")),
        widest=widest,
        bit_rows=_bit_rows(layers, widest),
        notes=f'<ul id="notes">{notes}</ul>' if notes else '<p id="notes">None.</p>',
    )
