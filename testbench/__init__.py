"""Proof stage: the cocotb bench, its runner on Verilator and Icarus, and the three-way verification."""
