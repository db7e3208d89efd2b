"""The terminal summary of a synthesis report (`qfx synth`, `qfx report`), optionally beside the
surrogate's estimate of the same project."""

from __future__ import annotations

from typing import Any

from qfx.hls.synth.report import RESOURCES

# the surrogate's keys for the report's resources
ESTIMATED = {"LUT": "lut", "FF": "ff", "DSP": "dsp", "BRAM18": "bram"}


def summary(report: dict[str, Any], estimate: dict[str, Any] | None = None) -> str:
    """Totals with utilization (and the estimate, where given), then one line per layer."""
    r = report
    lines = [
        f"{r['tool']} {r['tool_version']} on {r['style']} RTL, top {r['top']}, for {r['board']} ({r['part']}, "
        f"{r['family']}), {r['seconds']:.1f} s",
        f"{'':<8}{'measured':>12}{'of board':>10}{'ceiling':>9}"
        + (f"{'estimated':>12}{'error':>9}" if estimate else ""),
    ]
    for key in RESOURCES:
        used = r["total"][key]
        row = f"{key:<8}{used:>12,.0f}"
        row += f"{r['utilization'][key]:>9.1f}%{r['ceilings'][key]:>8.0f}%" if key in r["utilization"] else " " * 19
        if estimate and key in ESTIMATED:
            guess = estimate[ESTIMATED[key]]
            error = f"{100 * (guess - used) / used:+8.0f}%" if used else f"{'-':>9}"
            row += f"{guess:>12,.0f}{error}"
        lines.append(row)
    latency = f"latency {r['latency_cycles']} cycles, II {r['ii']} at {r['clock_ns']} ns"
    if r["total"].get("logic_depth") is not None:
        latency += f", logic depth {r['total']['logic_depth']}"
    if estimate:
        latency += f" (estimated: latency {estimate['latency_cycles']:,.0f}, II {estimate['ii']:,.0f})"
    lines.append(latency)
    lines.append("fits" if r["fits"] else f"does not fit: over the ceiling on {', '.join(r['over_ceiling'])}")
    if estimate:
        lines.append(
            f"estimated by the {estimate['model']} surrogate, which predicts Vitis HLS figures of hls4ml's C++"
            + (", here outside its training data" if estimate["extrapolation"] else "")
        )
    if r["layers"]:
        lines.append(f"{'layer':<28}" + "".join(f"{k:>9}" for k in RESOURCES))
        for layer in r["layers"]:
            lines.append(f"{layer['name'][:27]:<28}" + "".join(f"{layer[k]:>9,.0f}" for k in RESOURCES))
        lines.append(f"{'total - layers':<28}" + "".join(f"{r['layer_difference'][k]:>9,.0f}" for k in RESOURCES))
    return "\n".join(lines)
