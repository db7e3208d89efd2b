# qfx: two commands on a fresh machine: `make demo` and `make test`. Both bootstrap through `make venv`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# System tools the later stages need, as command:package: g++ (hls4ml's C simulation, the ap_fixed
# reference), Icarus, and headless Chromium with its matching driver (the estimate page's test).
APT_TOOLS := g++:g++ iverilog:iverilog chromium:chromium chromedriver:chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: venv system test demo bench lint clean hls rtl csim sim verify synth report

MODEL   ?= runs/demo/model.onnx
BOARD   ?= ultra96v2
PROJECT ?= runs/hls
INPUT   ?= runs/inputs.npy
STYLE   ?= da
SIMULATOR ?= verilator
TOOL    ?= auto
SYNTH_STYLE ?=

venv: $(STAMP)

system:
	@missing=""; for t in $(APT_TOOLS); do command -v $${t%%:*} >/dev/null || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing with apt"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

# torch first, from its exact pin: any looser request pulls the CUDA build (gigabytes).
$(STAMP): pyproject.toml | system
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: venv
	$(PY) -m pytest

# train -> export -> convert for Ultra96-v2 -> C simulation on the whole test set, bit-exact
demo: venv
	$(VENV)/bin/qfx demo -o runs/demo

# make hls MODEL=model.onnx BOARD=ultra96v2 PROJECT=runs/hls
hls: venv
	$(VENV)/bin/qfx convert $(MODEL) -o $(PROJECT) --board $(BOARD) --force

# make csim PROJECT=runs/hls INPUT=inputs.npy  (writes $(PROJECT)/csim_outputs.npy)
csim: venv
	$(VENV)/bin/qfx csim $(PROJECT) --input $(INPUT) --output $(PROJECT)/csim_outputs.npy

# make rtl PROJECT=runs/hls STYLE=da|mult  (rewrites $(PROJECT)/rtl)
rtl: venv
	$(VENV)/bin/qfx rtl $(PROJECT) --style $(STYLE)

# make sim PROJECT=runs/hls INPUT=inputs.npy SIMULATOR=verilator|icarus  (cocotb bench on the RTL)
sim: venv
	$(VENV)/bin/qfx sim $(PROJECT) --input $(INPUT) --output $(PROJECT)/rtl_outputs.npy --simulator $(SIMULATOR)

# emulation vs C simulation vs RTL on random and edge-case vectors
verify: venv
	$(VENV)/bin/qfx verify $(PROJECT) --simulator $(SIMULATOR)

# make synth PROJECT=runs/hls [TOOL=auto|yosys|vitis|vivado] [SYNTH_STYLE=da|mult]: LUT/FF/DSP/BRAM per design and
# layer in $(PROJECT)/reports/ (synth.json, index.html); Yosys everywhere, Vitis/Vivado HLS where installed.
synth: venv
	$(VENV)/bin/qfx synth $(PROJECT) --tool $(TOOL) $(if $(SYNTH_STYLE),--style $(SYNTH_STYLE))

# make report PROJECT=runs/hls: the synthesis summary and where its HTML page is
report: venv
	$(VENV)/bin/qfx report $(PROJECT)

# Benchmarks print a table and write JSON under bench/results/; Brevitas is their dev-only peer.
bench: venv
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) bench/quant_accuracy.py
	$(PY) bench/convert_time.py
	$(PY) bench/rtl_sim.py
	$(PY) bench/surrogate.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) runs build .pytest_cache .hypothesis bench/results
