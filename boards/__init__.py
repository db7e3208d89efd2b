"""FPGA boards qfx targets: part, resources, default clock, and what hls4ml needs to target them.

hls4ml has no Ultra96 board of its own: qfx passes the part (and the Vivado board part, for a
later block design) to hls4ml, which only needs the part for HLS synthesis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

_DATA = Path(__file__).with_name("boards.json")
# Above these fractions of a device, timing closure gets hard (LUT 70%, FF 50%, BRAM/DSP 80%).
CEILINGS = {"LUT": 0.70, "FF": 0.50, "DSP": 0.80, "BRAM18": 0.80, "URAM": 0.80}


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    part: str
    family: str  # the vendor's device family (hls4ml, Vivado)
    synth_family: str | None  # Yosys synth_xilinx -family (xcup, xc7); None where the open flow has none
    lut: int
    ff: int
    dsp: int
    bram36: int
    uram: int
    clock_ns: float
    board_part: str | None = None

    def resources(self) -> dict[str, int]:
        return {"LUT": self.lut, "FF": self.ff, "DSP": self.dsp, "BRAM36": self.bram36, "URAM": self.uram}

    def capacity(self) -> dict[str, int]:
        """Resources in the units of synthesis reports and the surrogate (BRAM as 18K halves of a BRAM36)."""
        return {"LUT": self.lut, "FF": self.ff, "DSP": self.dsp, "BRAM18": 2 * self.bram36, "URAM": self.uram}

    def utilization(self, used: dict[str, float]) -> dict[str, float]:
        """Percent of the device for each resource in `used` that the board has (absent ones count 0 %)."""
        cap = self.capacity()
        return {
            k: (100.0 * used[k] / cap[k] if cap[k] else (0.0 if not used[k] else float("inf")))
            for k in used
            if k in cap
        }

    def fits(self, used: dict[str, float]) -> list[str]:
        """The resources over their timing-closure ceiling (empty when the design fits)."""
        pct = self.utilization(used)
        return [k for k, v in pct.items() if v > 100 * CEILINGS[k]]


def all_boards() -> dict[str, Board]:
    return {name: Board(name=name, **spec) for name, spec in json.loads(_DATA.read_text()).items()}


def get(name: str) -> Board:
    boards = all_boards()
    if name not in boards:
        raise ValueError(f"board {name!r} is unknown; known boards: {', '.join(boards)}")
    return boards[name]
