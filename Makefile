# qfx: two commands on a fresh machine: `make demo` and `make test`. Both bootstrap through `make venv`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# System tools the later stages need: g++ (hls4ml's C simulation, the ap_fixed reference), Icarus.
APT_TOOLS := g++ iverilog
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: venv system test demo bench lint clean

venv: $(STAMP)

system:
	@missing=""; for t in $(APT_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing with apt"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; fi

# torch first, from its exact pin: any looser request pulls the CUDA build (gigabytes).
$(STAMP): pyproject.toml | system
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: venv
	$(PY) -m pytest

demo: venv
	$(VENV)/bin/qfx train --arch digits_mlp --bits 8 -o runs/digits_mlp.pt

# Benchmarks print a table and write JSON under bench/results/; Brevitas is their dev-only peer.
bench: venv
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) bench/quant_accuracy.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) runs build .pytest_cache .hypothesis bench/results
