"""FPGA boards qfx targets: part, resources, default clock, and what hls4ml needs to target them.

hls4ml has no Ultra96 board of its own: qfx passes the part (and the Vivado board part, for a
later block design) to hls4ml, which only needs the part for HLS synthesis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

_DATA = Path(__file__).with_name("boards.json")


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    part: str
    family: str
    lut: int
    ff: int
    dsp: int
    bram36: int
    uram: int
    clock_ns: float
    board_part: str | None = None

    def resources(self) -> dict[str, int]:
        return {"LUT": self.lut, "FF": self.ff, "DSP": self.dsp, "BRAM36": self.bram36, "URAM": self.uram}


def all_boards() -> dict[str, Board]:
    return {name: Board(name=name, **spec) for name, spec in json.loads(_DATA.read_text()).items()}


def get(name: str) -> Board:
    boards = all_boards()
    if name not in boards:
        raise ValueError(f"board {name!r} is unknown; known boards: {', '.join(boards)}")
    return boards[name]
