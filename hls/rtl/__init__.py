"""RTL for converted projects: the prepared graph traced into da4ml (`trace`) and written as pipelined
Verilog (`write`)."""
