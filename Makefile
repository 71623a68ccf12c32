# mixseg — the two commands a new machine needs: `make demo` and `make test`. Both install what is missing.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mixseg-installed
export CUDA_VISIBLE_DEVICES ?= -1
PYTEST_ARGS ?=
# options of tools/demo.py, e.g. make demo DEMO_ARGS="--work-root /tmp/demo --demo-schedule data_size=tiny"
DEMO_ARGS ?=

.PHONY: install demo test test-fast clean-demo

install: $(STAMP)

# Re-runs only when the pinned stack or the installer changes; the mmcv wheel is cached outside the repo.
$(STAMP): requirements.txt pyproject.toml tools/install.sh
	VENV=$(VENV) bash tools/install.sh
	touch $@

demo: install
	$(PY) tools/demo.py $(DEMO_ARGS)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

clean-demo:
	rm -rf data/demo work_dirs/demo
