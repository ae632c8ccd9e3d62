# imgprep developer and CI entry points (GNU make).
#
#   make test      system packages, both virtualenvs, ruff, pytest with the reference readers required
#   make demo      pack a small demo dataset and read it back
#   make bench     run benchmarks/run_all.py (or each benchmarks/bench_*.py)
#   make lint      ruff only
#   make asan      the native core under AddressSanitizer + UBSan (also part of make test)
#   make clean     build outputs (keeps the virtualenvs and the wheel cache)
#   make distclean everything make created, virtualenvs and .cache included
#
# Every install step leaves a stamp file inside the thing it built, so a second `make test` only
# re-runs ruff and pytest; deleting a virtualenv deletes its stamps with it.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
VENV_MX := .venv-mx
CACHE := .cache
WHEELS := $(CACHE)/wheels
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PYTEST_ARGS ?=

# Pillow-SIMD is built from source with AVX2 (the point of having it); the wheel is cached per
# version so a rebuilt virtualenv does not recompile it.  Stock Pillow must never enter .venv.
PILLOW_SIMD_VERSION ?= 12.1.1.post0
PILLOW_SIMD_CC ?= cc -mavx2
PILLOW_SIMD_STAMP := $(WHEELS)/pillow-simd-$(PILLOW_SIMD_VERSION).built
# CPU-only use of DALI's MXNet reader (device_id=None); a pin keeps CI reproducible.
DALI_SPEC ?= nvidia-dali-cuda120==2.4.0
MXNET_SPECS := "mxnet==1.9.1" "numpy==1.23.5" "opencv-python-headless<4.12"
# A constraint nothing can satisfy: if any dependency asks for stock Pillow, pip fails loudly
# instead of silently overwriting Pillow-SIMD's PIL package.
NO_PILLOW := $(CACHE)/constraints-no-pillow.txt

APT_PACKAGES := build-essential binutils python3-dev python3-venv pkg-config \
	libjpeg62-turbo-dev zlib1g-dev libturbojpeg0-dev libgomp1 libquadmath0

NATIVE_SOURCES := $(wildcard native/*.c native/*.h)
REFERENCE_ENV := IMGPREP_MXNET_PYTHON=$(CURDIR)/$(VENV_MX)/bin/python IMGPREP_REQUIRE_REFERENCE=1 \
	IMGPREP_REQUIRE_NATIVE=1

export DEBIAN_FRONTEND := noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

.PHONY: test demo bench lint asan clean distclean system-deps venv venv-mx .venv .venv-mx

# ---------------------------------------------------------------------------------------------
# Debian packages: dpkg -s first, so a provisioned machine never touches apt.
system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
		dpkg -s "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo -n"; \
		echo "system-deps: installing$$missing"; \
		$$sudo apt-get update -qq; \
		$$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# ---------------------------------------------------------------------------------------------
# .venv: Pillow-SIMD (AVX2) + imgprep editable with [test,all] + DALI.
venv .venv: $(VENV)/.stamp-project $(VENV)/.stamp-dali

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel

$(NO_PILLOW):
	@mkdir -p $(@D)
	printf 'pillow<0\n' > $@

$(PILLOW_SIMD_STAMP): | $(VENV)/bin/python
	@mkdir -p $(WHEELS)
	rm -f $(WHEELS)/[Pp]illow_[Ss][Ii][Mm][Dd]-$(PILLOW_SIMD_VERSION)-*.whl
	CC="$(PILLOW_SIMD_CC)" $(PIP) wheel -q --no-binary pillow-simd --no-deps -w $(WHEELS) \
		"pillow-simd==$(PILLOW_SIMD_VERSION)"
	touch $@

$(VENV)/.stamp-pillow: $(PILLOW_SIMD_STAMP) scripts/check_pillow.py | $(VENV)/bin/python
	$(PIP) install -q --no-deps --force-reinstall \
		$(WHEELS)/[Pp]illow_[Ss][Ii][Mm][Dd]-$(PILLOW_SIMD_VERSION)-*.whl
	$(PY) scripts/check_pillow.py
	touch $@

$(VENV)/.stamp-project: $(VENV)/.stamp-pillow $(NO_PILLOW) setup.py pyproject.toml imgprep/__init__.py $(NATIVE_SOURCES)
	$(PIP) install -q -c $(NO_PILLOW) -e ".[test,all]"
	$(PY) scripts/check_pillow.py
	touch $@

$(VENV)/.stamp-dali: $(VENV)/.stamp-pillow $(NO_PILLOW)
	$(PIP) install -q -c $(NO_PILLOW) "$(DALI_SPEC)"
	$(PY) -c "import nvidia.dali"
	touch $@

# ---------------------------------------------------------------------------------------------
# .venv-mx: MXNet 1.9.1 as a reference reader only (needs numpy < 1.24 and OpenCV).
venv-mx .venv-mx: $(VENV_MX)/.stamp

$(VENV_MX)/.stamp:
	$(PYTHON) -m venv $(VENV_MX)
	$(VENV_MX)/bin/python -m pip install -q $(MXNET_SPECS)
	$(VENV_MX)/bin/python -W ignore -c "import mxnet, cv2; mxnet.recordio.MXRecordIO"
	touch $@

# ---------------------------------------------------------------------------------------------
lint: $(VENV)/.stamp-project
	$(VENV)/bin/ruff check .

test: system-deps
	$(MAKE) --no-print-directory venv venv-mx
	$(VENV)/bin/ruff check .
	$(REFERENCE_ENV) $(PY) -m pytest $(PYTEST_ARGS)
	@echo "--- the packer and its judges again on the Pillow path (IMGPREP_NATIVE=0)"
	$(REFERENCE_ENV) IMGPREP_NATIVE=0 $(PY) -m pytest $(PYTEST_ARGS) tests/test_pack.py tests/test_pack_reference.py
	$(MAKE) --no-print-directory asan

# The native core under AddressSanitizer + UBSan: its tests and fuzzers, then a leak check (~20 s).
asan: $(VENV)/.stamp-project
	bash native/check_asan.sh $(CURDIR)/$(PY)

demo: system-deps
	$(MAKE) --no-print-directory venv
	$(PY) scripts/demo.py

bench: system-deps
	$(MAKE) --no-print-directory venv venv-mx
	@if [ -f benchmarks/run_all.py ]; then \
		$(REFERENCE_ENV) $(PY) benchmarks/run_all.py; \
	else \
		set -- benchmarks/bench_*.py; \
		[ -e "$$1" ] || { echo "bench: no benchmarks/run_all.py or benchmarks/bench_*.py"; exit 1; }; \
		for b in "$$@"; do echo "== $$b"; $(REFERENCE_ENV) $(PY) "$$b"; done; \
	fi

# The native .so lives in imgprep/ (editable install): dropping the project stamp makes the
# next `make` reinstall, which rebuilds it.
clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis .ruff_cache .bench demo-output
	rm -f $(VENV)/.stamp-project
	find . -path ./$(VENV) -prune -o -path ./$(VENV_MX) -prune -o -path ./.git -prune -o \
		\( -name __pycache__ -type d -prune -exec rm -rf {} + \) -o \
		\( -name '*.so' -path './imgprep/*' -exec rm -f {} + \)

distclean: clean
	rm -rf $(VENV) $(VENV_MX) $(CACHE)
