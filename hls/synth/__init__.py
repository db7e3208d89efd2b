"""Synthesis of a converted project: the open flow (Yosys on the project's RTL) and the vendor flow
(hls4ml's own Vitis/Vivado build), both reported in one schema (`DIR/reports/synth.json`) and an HTML page."""
