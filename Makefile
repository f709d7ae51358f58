# DARTS postprocessing for QGIS. `make demo` and `make test` are all a new user needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

SYSTEM_PYTHON := /usr/bin/python3
VENV          := .venv
VENV_PYTHON   := $(VENV)/bin/python
PYTEST_ARGS   := -p no:cacheprovider --import-mode=importlib -q -rs
PLUGIN        := darts_postprocessing

DEMO          := demo-output
QGIS_ENV      := QT_QPA_PLATFORM=offscreen QGIS_CUSTOM_CONFIG_PATH=$(CURDIR)/build/qgis-settings
QGIS_PLUGINS  ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/default/python/plugins

.PHONY: help deps system-deps venv lint test test-trixie test-core test-core-current test-qgis test-gui mutation bench bench-polygonize bench-mosaic bench-labels bench-tiles bench-file bench-merge demo package deploy clean

help:
	@echo "make demo     install what is missing, build a sample tile, run qgis_process on it ($(DEMO)/)"
	@echo "make test     lint and all test suites (installs what is missing first)"
	@echo "make test-trixie  the core, QGIS and desktop suites on Debian 13 / QGIS 3.44 in a debootstrap chroot (root; build/trixie-root)"
	@echo "make lint     ruff and flake8-qgis (QGIS plugin and Qt6 rules), from the venv"
	@echo "make package  dist/$(PLUGIN).zip, to install in QGIS (Plugins > Install from ZIP)"
	@echo "make deploy   copy the plugin into $(QGIS_PLUGINS)"
	@echo "make mutation mutation testing of the core with mutmut (in the venv; ~15 min on 2 cores)"
	@echo "make bench    benchmark the core against the scikit-image reference on a 10980x10980 tile"
	@echo "make bench-polygonize  benchmark polygonizing a 10980x10980 tile with ~10^4 objects"
	@echo "make bench-labels  object labelling across dask chunks: the core's row runs against dask-image"
	@echo "make bench-mosaic  qgis_process on a 4x4 VRT mosaic of full tiles (1.9 G px), block-wise; needs ~8 GB"
	@echo "make bench-merge  processtiles' merge alone: 4 speckled tiles and 50 tiles with ~1.5*10^5 objects (~40 s, 1 GB)"
	@echo "make bench-file  qgis_process prepareexport and processtiles per full tile against main, same run, outputs compared"
	@echo "make bench-tiles  qgis_process darts:processtiles on 50 full tiles (1 and 2 workers) vs per-tile runs + QGIS merge/dissolve"
	@echo "make deps     install QGIS (3.40 on Debian 12, 3.44 on 13), Debian's Python stack and a venv of current pip releases"

deps: system-deps venv

system-deps:
	bash scripts/install-deps.sh

# A venv with current releases (numpy 2, scikit-image 0.26+); rebuilt when the requirements change.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements-current.txt | system-deps
	test -x $(VENV_PYTHON) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install -q --upgrade -r requirements-current.txt
	touch $@

test: deps lint test-core test-core-current test-qgis test-gui

# ruff (general rules) and flake8 with flake8-qgis (QGS1xx plugin rules, QGS4xx Qt6 / QGIS 4 rules),
# both from the venv; settings in pyproject.toml.
lint: $(VENV)/.lint-installed
	$(VENV)/bin/ruff check --no-cache .
	$(VENV)/bin/flake8 .
$(VENV)/.lint-installed: requirements-lint.txt $(VENV)/.installed
	$(VENV_PYTHON) -m pip install -q --upgrade -r requirements-lint.txt
	touch $@

# Debian 13 (trixie) with QGIS 3.44 from trixie-backports: test-core, test-qgis (fault suite
# included) and test-gui in a debootstrap root file system (.ci/trixie says how; needs root).
test-trixie:
	bash .ci/trixie test

# Every test file of tests/ itself (the QGIS and desktop suites are in tests/qgis and tests/gui).
CORE_TESTS := $(sort $(wildcard tests/test_*.py))

# The core in Debian's Python (Debian 12: numpy 1.24, scikit-image 0.19; Debian 13: numpy 2.2,
# scikit-image 0.25), the Python QGIS uses, with GDAL's osgeo.
test-core:
	$(SYSTEM_PYTHON) -m pytest $(PYTEST_ARGS) $(CORE_TESTS)

# The core in the venv of current pip releases (numpy 2.x, scikit-image 0.26+); it has no GDAL
# bindings (PyPI's GDAL is source-only; not tried), so the file-writing tests skip there.
test-core-current: venv
	$(VENV_PYTHON) -m pytest $(PYTEST_ARGS) $(CORE_TESTS)

# The plugin in a real, headless QGIS: processing.run, qgis_process, the model, metadata.
test-qgis:
	QT_QPA_PLATFORM=offscreen $(SYSTEM_PYTHON) -m pytest $(PYTEST_ARGS) tests/qgis

# The QGIS desktop under Xvfb (the test starts it with xvfb-run); screenshot in test-output/.
test-gui:
	$(SYSTEM_PYTHON) -m pytest $(PYTEST_ARGS) tests/gui

# Mutation testing of the core: mutmut 3 (not in Debian) goes into the venv only. Mutates
# MUTATION_FILES with the venv's core tests (scripts/mutation.py says which), in build/mutation;
# stops after MUTATION_TIME_LIMIT seconds and reports what it checked so far.
MUTATION_FILES      ?= core/kernels/postprocess.py core/kernels/runs.py core/kernels/checks.py core/products/api.py core/kernels/objects.py core/kernels/quality.py
MUTATION_TIME_LIMIT ?= 1200
mutation: venv
	$(VENV_PYTHON) -m pip install -q 'mutmut>=3.3,<4'
	$(VENV_PYTHON) scripts/mutation.py --files $(MUTATION_FILES) --time-limit $(MUTATION_TIME_LIMIT)

demo: system-deps
	rm -rf $(DEMO) build/qgis-settings
	$(SYSTEM_PYTHON) scripts/sample_tile.py $(DEMO)/input --size 1024
	$(SYSTEM_PYTHON) scripts/package.py stage build/qgis-settings/profiles/default/python/plugins
	$(QGIS_ENV) qgis_process plugins enable $(PLUGIN) >/dev/null
	$(QGIS_ENV) qgis_process run darts:prepareexport -- \
	    PROBABILITIES=$(DEMO)/input/probabilities.tif QUALITY_MASK=$(DEMO)/input/quality_data_mask.tif \
	    THRESHOLD=0.5 MASK_EROSION_SIZE=10 MIN_OBJECT_SIZE=32 QUALITY_LEVEL=low_quality \
	    OUTPUT_BINARIZED=$(DEMO)/binarized.tif OUTPUT_EXTENT=$(DEMO)/extent.tif \
	    OUTPUT_PROBABILITIES=$(DEMO)/probabilities_masked.tif OUTPUT_POLYGONS=$(DEMO)/slumps.gpkg \
	    OUTPUT_REPORT=$(DEMO)/report.html
	$(QGIS_ENV) qgis_process run darts:exporttile -- \
	    PROBABILITIES=$(DEMO)/input/probabilities.tif BINARIZED=$(DEMO)/binarized.tif EXTENT=$(DEMO)/extent.tif \
	    OUTPUT_FOLDER=$(DEMO)/tile
	$(SYSTEM_PYTHON) scripts/sample_region.py $(DEMO)/region
	$(QGIS_ENV) qgis_process run darts:processtiles -- INPUT_FOLDER=$(DEMO)/region TARGET_CRS=EPSG:3413 \
	    OUTPUT=$(DEMO)/region.gpkg OUTPUT_REPORT=$(DEMO)/region.html
	@echo "Demo outputs in $(DEMO)/: binarized.tif extent.tif probabilities_masked.tif slumps.gpkg report.html"
	@echo "and a DARTS tile folder in $(DEMO)/tile/ (with thumbnail.jpg, darts_inference.json, quicklook.png); 4 tiles in two UTM zones merged into $(DEMO)/region.gpkg (region.html)"

package:
	$(SYSTEM_PYTHON) scripts/package.py zip dist/$(PLUGIN).zip

deploy:
	$(SYSTEM_PYTHON) scripts/package.py deploy $(QGIS_PLUGINS)
	@echo "Restart QGIS and enable 'DARTS Postprocessing' in Plugins > Manage and Install Plugins"

bench: deps
	$(SYSTEM_PYTHON) bench/bench_core.py

bench-polygonize: deps
	$(SYSTEM_PYTHON) bench/bench_polygonize.py

# dask-image is not in Debian: it goes into the venv, for this comparison only.
bench-labels: venv
	$(VENV_PYTHON) -m pip install -q dask-image
	$(VENV_PYTHON) bench/bench_labels.py

# 50 full tiles (copies of one generated tile, ~0.4 GB of files kept in build/bench-tiles); ~6 GB memory
bench-tiles: deps
	$(SYSTEM_PYTHON) bench/bench_tiles.py --keep build/bench-tiles $(BENCH_TILES_ARGS)

bench-file: deps
	$(SYSTEM_PYTHON) bench/bench_file_runs.py $(BENCH_FILE_ARGS)

# BENCH_MOSAIC_ARGS="--tiles 9" for the ~10^5 x 10^5 px run
bench-merge: deps
	$(SYSTEM_PYTHON) bench/bench_merge.py $(BENCH_MERGE_ARGS)

bench-mosaic: deps
	$(SYSTEM_PYTHON) bench/bench_mosaic.py $(BENCH_MOSAIC_ARGS)

clean:
	rm -rf $(VENV) build dist
