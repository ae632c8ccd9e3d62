# imgprep developer and CI entry points (GNU make).
#
#   make demo      .venv with imgprep alone (+ SeaweedFS for its S3 leg): pack a demo dataset, read it back
#   make test      system packages, test tools, reference readers, the wheel; ruff, import contracts,
#                  the docs site (mkdocs --strict),
#                  pytest (reference readers and servers required, skips checked against an allowlist)
#   make wheel     dist/imgprep-*-manylinux_*.whl with libturbojpeg inside (auditwheel + patchelf)
#   make bench     run benchmarks/run_all.py
#   make lint      ruff and the import-layer contracts (lint-imports)
#   make docs      the documentation site into site/ (mkdocs build --strict; also part of make test)
#   make asan      the native core under AddressSanitizer + UBSan (also part of make test)
#   make clean     build outputs (keeps the virtualenvs and the pip cache)
#   make distclean everything make created, virtualenvs and .cache included
#
# Every install step leaves a stamp file inside the thing it built, so a second `make test` only
# re-runs the checks; deleting a virtualenv deletes its stamps with it.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
VENV_MX := .venv-mx
CACHE := .cache
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PYTEST_ARGS ?=
REPORTS := $(CACHE)/test-reports

# CPU-only use of DALI's MXNet reader (device_id=None); a pin keeps CI reproducible.
DALI_SPEC ?= nvidia-dali-cuda120==2.4.0
MXNET_SPECS := "mxnet==1.9.1" "numpy==1.23.5" "opencv-python-headless<4.12"
# PyTorch for the imgprep.data DataLoader tests: a CPU build, named by its local version so pip can
# never pick the multi-GB CUDA build of the same release (the CPU wheel comes from a find-links
# folder or https://download.pytorch.org/whl/cpu given as PIP_EXTRA_INDEX_URL).
TORCH_SPEC ?= torch==2.13.0+cpu

# Package names common to Debian and Ubuntu: what building the native core needs.
# libjpeg-dev (Debian: libjpeg62-turbo-dev, Ubuntu: libjpeg-turbo8-dev): libjpeg's own API (jpeg_crop_scanline, jpeg_skip_scanlines) for the reader.
APT_BUILD := build-essential python3-dev python3-venv pkg-config libturbojpeg0-dev libjpeg-dev
# What the tests need on top: objdump (ASan check), MXNet's runtime libraries, and the headless
# browser that checks inspect's HTML page (Debian's `chromium`; Ubuntu ships it only as a snap).
APT_TEST := binutils libgomp1 libquadmath0 chromium fonts-dejavu-core

NATIVE_SOURCES := $(wildcard native/*.c native/*.h)
REFERENCE_ENV := IMGPREP_MXNET_PYTHON=$(CURDIR)/$(VENV_MX)/bin/python IMGPREP_REQUIRE_REFERENCE=1 \
	IMGPREP_REQUIRE_NATIVE=1 IMGPREP_WHEEL_DIR=$(CURDIR)/dist

export DEBIAN_FRONTEND := noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

.PHONY: test demo wheel bench lint docs asan clean distclean apt-build apt-test venv venv-test venv-mx \
	.venv .venv-mx

# ---------------------------------------------------------------------------------------------
# Debian/Ubuntu packages: dpkg -s first, so a provisioned machine never touches apt.
define apt_install
	@missing=""; \
	for p in $(1); do \
		dpkg -s "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo -n"; \
		echo "apt: installing$$missing"; \
		$$sudo apt-get update -qq; \
		$$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

apt-build:
	$(call apt_install,$(APT_BUILD))

apt-test: apt-build
	$(call apt_install,$(APT_TEST))

# ---------------------------------------------------------------------------------------------
# .venv: imgprep editable with what the demo uses; venv-test adds the test tools and DALI.
venv .venv: $(VENV)/.stamp-project
venv-test: $(VENV)/.stamp-test $(VENV)/.stamp-dali $(VENV)/.stamp-torch

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip "setuptools>=64" wheel

$(VENV)/.stamp-project: setup.py pyproject.toml imgprep/__init__.py $(NATIVE_SOURCES) | $(VENV)/bin/python
	IMGPREP_FORCE_NATIVE=1 $(PIP) install -q -e ".[demo]"
	$(PY) -c "import imgprep._native, PIL, boto3"
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-project
	$(PIP) install -q -e ".[demo,test,wheel]"
	touch $@

$(VENV)/.stamp-torch: | $(VENV)/bin/python
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PY) -c "import torch.utils.data"
	touch $@

$(VENV)/.stamp-dali: | $(VENV)/bin/python
	$(PIP) install -q "$(DALI_SPEC)"
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
# A wheel that carries its native core: built against the system libturbojpeg, then repaired by
# auditwheel, which copies libturbojpeg into imgprep.libs/ and points the extension at it.
wheel: apt-build $(VENV)/.stamp-test
	rm -rf build dist/raw dist/imgprep-*.whl
	IMGPREP_FORCE_NATIVE=1 $(PIP) wheel -q --no-deps --no-build-isolation -w dist/raw .
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/auditwheel repair -w dist dist/raw/imgprep-*.whl
	rm -rf dist/raw build
	@ls dist/imgprep-*.whl

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# The site from docs/ and the docstrings (mkdocs.yml); --strict: a broken link, anchor or API
# reference fails it. Offline: no fonts or scripts fetched (see mkdocs.yml).
docs: $(VENV)/.stamp-test
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# Both pytest passes write JUnit XML; scripts/test_report.py sums them, fails on any skip that
# tests/skip_allowlist.txt does not name, and prints the closing count line.
test: apt-test
	$(MAKE) --no-print-directory venv-test venv-mx
	$(MAKE) --no-print-directory wheel
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site
	@rm -rf $(REPORTS); mkdir -p $(REPORTS)
	$(REFERENCE_ENV) $(PY) -m pytest --junitxml=$(REPORTS)/main.xml $(PYTEST_ARGS) || echo $$? > $(REPORTS)/failed
	@echo "--- the packer, the training reader and their judges again on the Pillow path (IMGPREP_NATIVE=0)"
	$(REFERENCE_ENV) IMGPREP_NATIVE=0 $(PY) -m pytest --junitxml=$(REPORTS)/pillow.xml $(PYTEST_ARGS) \
		tests/test_pack.py tests/test_pack_reference.py tests/test_data.py || echo $$? > $(REPORTS)/failed
	$(MAKE) --no-print-directory asan
	$(PY) scripts/test_report.py --allowlist tests/skip_allowlist.txt $(REPORTS)/main.xml $(REPORTS)/pillow.xml
	@[ ! -e $(REPORTS)/failed ] || { echo "make test: pytest failed"; exit 1; }

# The native core under AddressSanitizer + UBSan: its tests and fuzzers, then a leak check (~25 s).
asan: $(VENV)/.stamp-test
	bash native/check_asan.sh $(CURDIR)/$(PY)

demo: apt-build
	$(MAKE) --no-print-directory venv
	$(PY) scripts/demo.py

bench: apt-test
	$(MAKE) --no-print-directory venv-test venv-mx
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
	rm -rf build dist *.egg-info .pytest_cache .hypothesis .ruff_cache .bench demo-output site $(REPORTS)
	rm -f $(VENV)/.stamp-project $(VENV)/.stamp-test
	find . -path ./$(VENV) -prune -o -path ./$(VENV_MX) -prune -o -path ./.git -prune -o \
		\( -name __pycache__ -type d -prune -exec rm -rf {} + \) -o \
		\( -name '*.so' -path './imgprep/*' -exec rm -f {} + \)

distclean: clean
	rm -rf $(VENV) $(VENV_MX) $(CACHE)
