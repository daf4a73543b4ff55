# Two commands do everything (see README): `make lab` and `make test`.
# Both create .venv on first use and reinstall only when pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sda-lab-installed
BROWSER_STAMP := $(VENV)/.browser-deps
PORT   ?= 8888

.PHONY: install lab test test-fast bench notebooks clean browser-deps cxx-deps

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar off -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) cxx-deps

# A C++ compiler for the test that builds a host loading the nn~ export as nn~ does
# (tests/cpp/nn_host.cpp, against the torch wheel's libtorch). Installed only where apt-get can
# run as root; elsewhere, without g++, that test is skipped with the reason.
CXX_STAMP := $(VENV)/.cxx-deps
cxx-deps: $(CXX_STAMP)
$(CXX_STAMP):
	@if command -v g++ >/dev/null; then :; \
	elif command -v apt-get >/dev/null && test "$$(id -u)" = 0; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null) \
	  || echo "warning: could not install g++; the C++ host test will be skipped"; \
	else echo "note: no g++ and no root apt-get; the C++ host test will be skipped"; fi
	@mkdir -p $(VENV) && touch $(CXX_STAMP)

# Open the workbench at the first notebook, serving the repository root so that data/ (your
# audio in data/user/, the bundled data/examples/) shows in JupyterLab's file browser. Without
# root_dir, Jupyter would serve only the notebook's own folder (notebooks/).
# (Jupyter refuses to run as root without --allow-root: containers and lab machines often are root.)
# OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning, so two busy kernels do
# not slow each other several-fold (benchmarks/bench_explorer.py measures it).
# Kernels idle for 30 minutes are shut down (a kernel holding a trained model and its data is
# 0.5-1 GB; seven notebooks left open would hold several GB until the server stops).
lab: install
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(BIN)/jupyter lab --ServerApp.port=$(PORT) --ServerApp.root_dir=. \
	  --MappingKernelManager.cull_idle_timeout=1800 --MappingKernelManager.cull_interval=120 \
	  --MappingKernelManager.cull_connected=True \
	  $$(test "$$(id -u)" = 0 && echo --allow-root) notebooks/01_mel_round_trip.ipynb

# Headless Chromium for the real-browser test (Debian's package, never a browser download).
# Installed only where apt-get can run as root; elsewhere the browser test is skipped.
browser-deps: $(BROWSER_STAMP)
$(BROWSER_STAMP):
	@if test -x /usr/bin/chromium; then :; \
	elif command -v apt-get >/dev/null && test "$$(id -u)" = 0; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; the browser test will be skipped"; \
	else echo "note: no /usr/bin/chromium and no root apt-get; the browser test will be skipped"; fi
	@mkdir -p $(VENV) && touch $(BROWSER_STAMP)

# Unit tests plus every notebook under nbval (and the browser test where Chromium is present),
# on two pytest-xdist workers of one thread each; --dist loadfile keeps a file's tests (a
# notebook's cells, which share one kernel) on one worker.
XDIST := -n 2 --dist loadfile
test: install browser-deps
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(BIN)/python -m pytest $(XDIST)

# Unit tests only, for quick iteration.
test-fast: install
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(BIN)/python -m pytest $(XDIST) tests -m "not browser"

bench: install
	$(BIN)/python -m benchmarks.run

# Re-execute the notebooks in place and stamp them (tests/test_notebook_outputs.py checks the
# stamps): `make notebooks` runs all, `make notebooks NB="03 07"` the ones named.
notebooks: install
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(BIN)/python tools/nbstamp.py $(NB)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache data/cache
