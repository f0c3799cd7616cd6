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

# A Chromium and the fonts, for the browser tests (installed when missing; needs root or sudo): Debian's chromium,
# or Playwright's own where apt's is a snap (Ubuntu)
browser: install
	bash scripts/install_browser.sh $(PY)

# `make run MODEL=<Hub id or folder>` serves that model: on a GPU with the planner's flags for this card at CONTEXT
# tokens, and with what is free on it now (`workbench plan --gpu local --fit-free --serve-flags`: a desktop's share
# lowers --gpu-memory-utilization; a plan that does not fit stops here with its reason), on the CPU build as
# `workbench ui --model` does. Without MODEL:
# the bundled model, and on a GPU a line that says so and how to change it.
CONTEXT ?= 32768
ifneq ($(filter run,$(MAKECMDGOALS)),)
ifneq ($(origin MODEL),undefined)
ifeq ($(strip $(MODEL)),)
$(error MODEL=: name a model: a Hub id like Qwen/Qwen3-14B-AWQ, a folder with config.json, or leave MODEL unset for the bundled model)
endif
endif
endif
run: model
	@gpu=$$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1); \
	if [ -z "$(strip $(MODEL))" ]; then \
	  [ -z "$$gpu" ] || echo "make run serves the bundled test model ($$($(PY) -c 'from workbench.serving import models; print(models.BUNDLED_MODEL)')) on your $$gpu; for the reference case: make run MODEL=Qwen/Qwen3-14B-AWQ (docs/rtx3090.md: On your RTX 3090)"; \
	  exec $(WB) ui; fi; \
	flags=""; \
	if [ -n "$$gpu" ]; then \
	  flags=$$($(WB) plan --model "$(MODEL)" --gpu local --fit-free --max-model-len $(CONTEXT) --serve-flags) || exit 2; \
	  echo "serving $(MODEL) on $$gpu with the planner's flags: $$flags"; fi; \
	eval exec $(WB) ui --model '"$(MODEL)"' $$flags

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
