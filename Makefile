# Every target installs what it needs first, so each works on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test browser lint demo bench clean

# pip compiles the installed sources one file at a time; compileall on every core is quicker
# (a fresh install on 2 cores: 81 s, now 40 + 25 s), and it skips the libraries' own test
# suites, which nothing imports (pandas', scipy's, numpy's...: 22 of its 61 s of CPU)
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e '.[dev]'
	$(BIN)/python -m compileall -q -j 0 -x '/tests?/' $(VENV)/lib >/dev/null
	touch $(STAMP)

install: $(STAMP)  ## venv + pip install -e '.[dev]'

# bytecode compiled first: with PYTHONDONTWRITEBYTECODE set (as on some CI hosts) every one of
# the suite's hundreds of command processes would compile the sources again (~0.1 s of CPU each)
# the install and the browser's apt-get side by side (on a fresh machine each takes a while)
test:  ## the whole suite (offline: loopback emulator, ../shared/data when present)
	$(MAKE) --no-print-directory -j 2 install browser
	$(BIN)/python -m compileall -q -j 0 src tests examples >/dev/null
	$(BIN)/python -m pytest -q -n auto --maxprocesses=4 --dist loadgroup

# a headless browser opens the setup-chart page in tests/test_setup_charts.py (skipped without it)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium could not be installed: the browser test will skip"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

demo: $(STAMP)  ## offline: scan a replayed SYNTHETIC sample market (fetched into ./demo-data)
	$(BIN)/python examples/make_sample_market.py demo-data/sample-market
	$(BIN)/cryptobot --config examples/demo.yaml fetch --top 10 --timeframes 5m,15m --days 7 --funding
	$(BIN)/cryptobot --config examples/demo.yaml scan --top 30 --within 12 --format table

bench: $(STAMP)  ## benchmarks print tables; nothing is asserted
	$(BIN)/python bench/bench_import.py
	$(BIN)/python bench/bench_fetch_requests.py
	$(BIN)/python bench/bench_scan.py
	$(BIN)/python bench/bench_backtest.py
	$(BIN)/python bench/bench_startup.py

clean:
	rm -rf $(VENV) demo-data .pytest_cache .ruff_cache
