# Two commands do all set-up: `make run` serves, `make test` checks everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ASSETS := engauge/http/static/vendor/.locked

.PHONY: run test lint fuzz bench profile assets clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The dashboard's chart library, pinned in package-lock.json and fetched from the npm registry.
$(ASSETS): package.json package-lock.json scripts/assets.py
	$(PYTHON) scripts/assets.py

assets: $(ASSETS)

run: $(STAMP) $(ASSETS)
	$(BIN)/engauge serve

lint: $(STAMP)
	$(BIN)/ruff check engauge tests benchmarks snapshots scripts fuzz
	$(BIN)/mypy
	$(BIN)/bandit --quiet --recursive engauge

test: lint $(ASSETS)
	$(BIN)/pytest -q

# Generated attacks, longer than `make test` runs them: schemathesis against the API reference
# (FUZZ_EXAMPLES per operation and phase; make test: 25), and coverage-guided fuzzing of every
# reader of outside bytes (FUZZ_SECONDS each; make test: 3 s).
FUZZ_EXAMPLES ?= 300
FUZZ_SECONDS ?= 60
fuzz: $(STAMP) $(ASSETS)
	ENGAUGE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -s tests/test_api_reference.py -k schemathesis
	$(BIN)/python -m fuzz --seconds $(FUZZ_SECONDS)

bench: $(STAMP) $(ASSETS)
	$(BIN)/python -m benchmarks

# A flame graph of the server under the batch scenario: where the next optimisation starts.
profile: $(STAMP) $(ASSETS)
	$(BIN)/python -m pip install --quiet py-spy
	$(BIN)/py-spy record --subprocesses --rate 200 -o benchmarks/results/profile-batch-ingest.svg \
		-- $(BIN)/python -m benchmarks batch-ingest --results $$(mktemp -d)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache engauge/http/static/vendor
