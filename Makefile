# make test   what CI runs (.ci/run): the whole suite against a real local Kafka broker, then ruff
# make demo   broker, topics, worker and load generator on this machine, SLIs on screen
# make bench  throughput benchmark
# make lint   ruff only
# Needs Python 3.11+, a JDK 17+ and Maven (for Kafka's jars, fetched once); installs the rest.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Inside the venv: deleting .venv also forgets that it was installed.
STAMP := $(VENV)/.make-stamp

.PHONY: venv test demo bench lint

venv: $(STAMP)

# Reinstalled only when pyproject.toml changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

# The test session starts its own broker on a free port and stops it at the end, on failure, on
# ^C/SIGTERM, and (kernel parent-death signal) even if pytest itself is killed.
test: venv
	$(BIN)/pytest --timeout=600
	$(BIN)/ruff check .

demo: venv
	$(BIN)/telemetry-pipeline demo

bench: venv
	$(BIN)/python benchmarks/throughput.py

lint: venv
	$(BIN)/ruff check .
