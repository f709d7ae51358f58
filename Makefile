# DARTS postprocessing for QGIS. `make demo` and `make test` are all a new user needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

SYSTEM_PYTHON := /usr/bin/python3
VENV          := .venv
VENV_PYTHON   := $(VENV)/bin/python
PYTEST_ARGS   := -p no:cacheprovider --import-mode=importlib -q -rs
PLUGIN        := darts_postprocessing

.PHONY: help deps system-deps venv test test-core test-core-current bench clean

help:
	@echo "make deps    install QGIS 3.40, Debian's Python stack and a venv of current pip releases"
	@echo "make test    all test suites (installs what is missing first)"
	@echo "make bench   benchmark the core against the scikit-image reference on a 10980x10980 tile"

deps: system-deps venv

system-deps:
	bash scripts/install-deps.sh

# A venv with current releases (numpy 2, scikit-image 0.26+); rebuilt when the requirements change.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements-current.txt | system-deps
	test -x $(VENV_PYTHON) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install -q --upgrade -r requirements-current.txt
	touch $@

test: deps test-core test-core-current

# The core in Debian's Python (numpy 1.24, scikit-image 0.19), the Python QGIS uses.
test-core:
	$(SYSTEM_PYTHON) -m pytest $(PYTEST_ARGS) tests/test_core_equivalence.py tests/test_core_api.py tests/test_gpu.py

# The core in the venv of current pip releases (numpy 2.x, scikit-image 0.26+).
test-core-current: venv
	$(VENV_PYTHON) -m pytest $(PYTEST_ARGS) tests/test_core_equivalence.py tests/test_core_api.py tests/test_gpu.py

bench: deps
	$(SYSTEM_PYTHON) bench/bench_core.py

clean:
	rm -rf $(VENV) build dist
