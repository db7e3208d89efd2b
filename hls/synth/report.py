"""The synthesis report, `DIR/reports/synth.json` (schema 1): one contract for every flow, read by the
HTML page, `qfx report`, the surrogate's data sets and the checks. Written beside and renamed into place."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qfx import boards
from qfx.hls.project import current_umask

SCHEMA = 1
REPORTS = "reports"
SYNTH_JSON = "synth.json"
INDEX_HTML = "index.html"
# Counted per design and per layer; BRAM in 18K halves of a BRAM36, CARRY in carry-chain cells.
RESOURCES = ("LUT", "FF", "DSP", "BRAM18", "URAM", "CARRY")
TOP_KEYS = (
    "schema", "tool", "tool_version", "board", "part", "family", "style", "top", "total", "layers",
    "latency_cycles", "ii", "clock_ns", "utilization", "fits", "seconds",
)  # fmt: skip


def counts(values: dict[str, float] | None = None) -> dict[str, float]:
    """Every resource key, zero where `values` has none."""
    values = values or {}
    return {k: values.get(k, 0) for k in RESOURCES}


@dataclass
class Measured:
    """What a flow measured, before the board's view (utilization, fits) is added."""

    tool: str
    tool_version: str
    style: str  # the RTL style synthesized ("da", "mult"), or "hls" for the vendor's own RTL
    top: str
    family: str
    total: dict[str, float]  # RESOURCES plus "logic_depth" (None where the tool does not say)
    layers: list[dict[str, Any]]  # {"name", RESOURCES..., and what the flow adds (e.g. "nodes")}
    latency_cycles: int | None
    ii: int | None
    layer_method: str  # how per-layer figures were obtained, and why they may not add up to the total
    notes: list[str] = field(default_factory=list)


def layer_difference(total: dict[str, float], layers: list[dict[str, Any]]) -> dict[str, float]:
    """total - sum of the layers, per resource: what the per-layer figures do not account for."""
    return {k: total.get(k, 0) - sum(layer.get(k, 0) for layer in layers) for k in RESOURCES}


def build(measured: Measured, board: boards.Board, clock_ns: float, seconds: float) -> dict[str, Any]:
    """The schema-1 report: the measurement plus utilization of the board and the ceilings' verdict."""
    used = {k: measured.total.get(k, 0) for k in boards.CEILINGS}
    utilization = board.utilization(used)
    over = board.fits(used)
    return {
        "schema": SCHEMA,
        "tool": measured.tool,
        "tool_version": measured.tool_version,
        "board": board.name,
        "part": board.part,
        "family": measured.family,
        "style": measured.style,
        "top": measured.top,
        "total": {**counts(measured.total), "logic_depth": measured.total.get("logic_depth")},
        "layers": [{"name": layer["name"], **counts(layer), **layer} for layer in measured.layers],
        "layer_method": measured.layer_method,
        "layer_difference": layer_difference(measured.total, measured.layers),
        "latency_cycles": measured.latency_cycles,
        "ii": measured.ii,
        "clock_ns": clock_ns,
        "utilization": {k: round(v, 3) for k, v in utilization.items()},
        "ceilings": {k: 100 * v for k, v in boards.CEILINGS.items()},
        "fits": not over,
        "over_ceiling": over,
        "notes": measured.notes,
        "seconds": round(seconds, 2),
    }


def check(report: dict[str, Any], where: str) -> dict[str, Any]:
    """A report as read from disk, or a ValueError naming what is missing (an older or foreign file)."""
    if report.get("schema") != SCHEMA:
        raise ValueError(f"{where}: schema {report.get('schema')!r}, expected {SCHEMA}; run qfx synth again")
    missing = [k for k in TOP_KEYS if k not in report]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}; run qfx synth again")
    return report


def load(project_dir: str | Path) -> dict[str, Any]:
    """The project's synthesis report, checked against the schema."""
    path = Path(project_dir) / REPORTS / SYNTH_JSON
    if not path.is_file():
        raise ValueError(f"{project_dir}: no {REPORTS}/{SYNTH_JSON}; run qfx synth {project_dir} first")
    try:
        return check(json.loads(path.read_text()), str(path))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def write(project_dir: str | Path, report: dict[str, Any], html: str, logs: dict[str, str]) -> Path:
    """Write `reports/` (synth.json, index.html and the tool logs) as a whole: built beside, then swapped
    in, so a reader never finds a complete-looking report from a failed run."""
    final = Path(project_dir) / REPORTS
    staging = Path(tempfile.mkdtemp(prefix=f".{REPORTS}.", dir=project_dir))
    try:
        for name, text in logs.items():
            (staging / name).write_text(text)
        (staging / INDEX_HTML).write_text(html)
        (staging / SYNTH_JSON).write_text(json.dumps(report, indent=2))
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes it private
        old = final.with_name(f".{REPORTS}.{os.getpid()}.old")
        if final.exists():
            final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
