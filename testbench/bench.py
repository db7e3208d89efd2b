"""The generic cocotb bench: streams packed input words into the top, one per clock, and records every
output word with the cycle it appeared in. Configured by the JSON file named in $QFX_BENCH.

Protocols: `valid` is the qfx top (in_valid/out_valid, II = 1); `ap_ctrl_hs` is Vitis/Vivado HLS RTL of
an io_parallel hls4ml project (ap_start/ap_done, one vector per transaction).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge


async def _reset(clk, rst, cycles: int = 2) -> None:
    rst.value = 1
    for _ in range(cycles):
        await FallingEdge(clk)
    rst.value = 0


async def _stream(dut, ports: dict, words: list[int], timeout: int) -> tuple[list[str], int]:
    """qfx top: drive a word every cycle; sample at the falling edge, when registered outputs are settled."""
    clk, in_valid, in_data = dut.clk, getattr(dut, ports["in_valid"]), getattr(dut, ports["in_data"])
    out_valid, out_data = getattr(dut, ports["out_valid"]), getattr(dut, ports["out_data"])
    outputs: list[str] = []
    first_out = -1
    cycle = 0
    while len(outputs) < len(words):
        if cycle < len(words):
            in_data.value = words[cycle]
            in_valid.value = 1
        else:
            in_valid.value = 0
        await FallingEdge(clk)
        cycle += 1
        if out_valid.value == 1:
            first_out = cycle if first_out < 0 else first_out
            outputs.append(format(out_data.value.to_unsigned(), "x"))
        if cycle > len(words) + timeout:
            raise AssertionError(f"{len(outputs)} of {len(words)} outputs after {cycle} cycles: out_valid stuck low")
    return outputs, first_out


async def _ap_ctrl(dut, ports: dict, words: list[int], timeout: int) -> tuple[list[str], int]:
    """HLS block protocol: raise ap_start with the inputs, wait for ap_done, read the output, repeat."""
    clk = getattr(dut, ports["clk"])
    in_data, out_data = getattr(dut, ports["in_data"]), getattr(dut, ports["out_data"])
    outputs: list[str] = []
    latency = -1
    for word in words:
        in_data.value = word
        dut.ap_start.value = 1
        cycle = 0
        while True:
            await FallingEdge(clk)
            cycle += 1
            if dut.ap_done.value == 1:
                break
            if cycle > timeout:
                raise AssertionError(f"ap_done never rose within {timeout} cycles")
        latency = cycle if latency < 0 else latency
        outputs.append(format(out_data.value.to_unsigned(), "x"))
        dut.ap_start.value = 0
        await FallingEdge(clk)
    return outputs, latency


@cocotb.test()
async def vectors(dut) -> None:
    cfg = json.loads(Path(os.environ["QFX_BENCH"]).read_text())
    words = [int(w, 16) for w in Path(cfg["vectors"]).read_text().split()]
    ports = cfg["ports"]
    clk = getattr(dut, ports["clk"])
    cocotb.start_soon(Clock(clk, 10, unit="ns").start())
    if ports.get("in_valid"):
        getattr(dut, ports["in_valid"]).value = 0
    await _reset(clk, getattr(dut, ports["rst"]))
    run = _stream if cfg["protocol"] == "valid" else _ap_ctrl
    t0 = time.perf_counter()
    outputs, latency = await run(dut, ports, words, cfg["timeout_cycles"])
    seconds = time.perf_counter() - t0
    Path(cfg["outputs"]).write_text(json.dumps({"outputs": outputs, "latency": latency, "seconds": seconds}))
