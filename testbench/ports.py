"""Port lists of any Verilog top (ours or Vitis HLS's), read with pyslang (pyverilog 1.3 fails on legal
Verilog such as `wire signed [7:0] a = A, b = B;`)."""

from __future__ import annotations

from pathlib import Path

import pyslang


def top_ports(files: list[Path], top: str) -> dict[str, tuple[str, int]]:
    """{port name: ("in" | "out" | "inout", width)} of module `top`; ValueError when it is not there."""
    compilation = pyslang.ast.Compilation()
    for f in files:
        compilation.addSyntaxTree(pyslang.syntax.SyntaxTree.fromFile(str(f)))
    for inst in compilation.getRoot().topInstances:
        if inst.name == top:
            return {p.name: (p.direction.name.lower(), int(p.type.bitWidth)) for p in inst.body.portList}
    raise ValueError(f"no top-level module {top} in {', '.join(str(f) for f in files)}")
