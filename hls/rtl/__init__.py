"""RTL for converted projects: the QONNX graph traced into da4ml and written as pipelined Verilog."""

from qfx.hls.rtl.write import write_rtl

__all__ = ["write_rtl"]
