# The two commands of the README: `make run` and `make test`. Everything else is a step of them.
VENV ?= .venv
WORKBENCH_TARGET ?= auto
PY := $(VENV)/bin/python
WB := $(VENV)/bin/workbench
STAMP := $(VENV)/.workbench-installed

.PHONY: install model browser run test test-fast bench clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV) $(WORKBENCH_TARGET)
	touch $@

model: install
	$(WB) prepare-model

# Debian's Chromium and the fonts, for the browser tests (installed when missing; needs root or sudo)
browser:
	bash scripts/install_browser.sh

run: model
	$(WB) ui

test: model browser
	$(PY) -m pytest

# Everything that needs no vLLM process: no engine, no notebooks (conftest.py marks the rest `engine`).
test-fast: model
	WORKBENCH_TEST_TIER=fast $(PY) -m pytest -o addopts=-ra -p no:nbval -m "not engine and not network" tests

bench: model
	$(PY) bench/plan_speed.py
	$(PY) bench/engine_startup.py
	$(PY) bench/quantize.py

clean-venv:
	rm -rf $(VENV)
