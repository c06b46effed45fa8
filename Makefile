# The commands a person types. `make run` and `make test` each create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DB ?= sqlite:///synoptic.db
DATASETS ?= ../shared/datasets

.PHONY: run test lint format bench bench-speed serve browser clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,web,eval]'
	@touch $(STAMP)

run: $(STAMP)  ## ingest the bundled example into ./synoptic.db and print every story's brief
	$(BIN)/synoptic run --db $(DB) examples/parade

test: $(STAMP) browser  ## the test suite, then lint and type checks
	$(BIN)/python -m pytest
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)  ## clustering, brief and extraction quality vs peers on the public datasets (docs/benchmarks.md)
	$(BIN)/python benchmarks/clustering.py --ecbplus $(DATASETS)/ecbplus/ECB+ \
		--multinews $(DATASETS)/multinews/sample_validation.csv
	$(BIN)/python benchmarks/briefs.py --multinews $(DATASETS)/multinews/sample_validation.csv
	$(BIN)/python benchmarks/entities.py --ecbplus $(DATASETS)/ecbplus/ECB+
	$(BIN)/python benchmarks/extraction.py --pages $(DATASETS)/scrapinghub --split report
	$(BIN)/python benchmarks/wires.py --multinews $(DATASETS)/multinews/sample_validation.csv
	$(BIN)/python benchmarks/dates.py --ecbplus $(DATASETS)/ecbplus/ECB+ \
		--multinews $(DATASETS)/multinews/sample_validation.csv --split report

STREAM ?= /tmp/synoptic-stream-100k.jsonl

bench-speed: $(STAMP)  ## ingest speed on a 100k-article stream built from the datasets, then restart checks (~25-45 min: the machine)
	test -s $(STREAM) || $(BIN)/python benchmarks/make_stream.py --ecbplus $(DATASETS)/ecbplus/ECB+ \
		--multinews $(DATASETS)/multinews/sample_validation.csv --n 100000 --days 300 --life 10 \
		--out $(STREAM)
	$(BIN)/python benchmarks/speed.py $(STREAM) --chunk 10000
	$(BIN)/python benchmarks/speed.py $(STREAM) --chunk 10000 --workers 2
	$(BIN)/python benchmarks/restart.py $(STREAM) --n 30000 --restarts 4
	$(BIN)/python benchmarks/restart.py --ecbplus $(DATASETS)/ecbplus/ECB+ --every 40

serve: $(STAMP)  ## the web page and JSON API on http://127.0.0.1:8000
	$(BIN)/synoptic serve --db $(DB)

# The browser test drives Debian's Chromium. Install it when missing and we are root; otherwise
# the test is skipped with that reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian's chromium for the browser test"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "chromium is not installed and this is not root: the browser test will be skipped"; fi; }

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache synoptic.db synoptic.db-*
