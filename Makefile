# make test         what CI runs (.ci/run): the whole suite against a real local Kafka broker, then ruff
# make demo         broker, topics, worker and load generator on this machine, SLIs on screen
#                   (make demo DEMO_ARGS="--port 19092" when 9092 is taken)
# make bench        throughput benchmark
# make lint         ruff only
# make clean-cache  remove the Kafka jars and broker data cached in ~/.cache/telemetry-pipeline
# Needs Python 3.11+ (as python3, or make PYTHON=python3.11) with its venv module and headers
# (Debian/Ubuntu: python3-venv python3-dev), a C compiler (for the redaction prefilter's wire walks),
# a JDK 17+ and Maven (for Kafka's jars, fetched once); installs the rest in .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Inside the venv: deleting .venv also forgets that it was installed.
STAMP := $(VENV)/.make-stamp
CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/telemetry-pipeline
DEMO_ARGS ?=

.PHONY: venv test demo bench lint clean-cache

venv: $(STAMP)

# Reinstalled only when pyproject.toml or the C extension (setup.py) changes. The checks say what is
# missing before venv or pip fail with something less clear.
$(STAMP): pyproject.toml setup.py src/telemetry_pipeline/redaction/_wire.c
	@command -v $(PYTHON) >/dev/null \
		|| { echo "no $(PYTHON) on PATH: install Python 3.11+ or run make PYTHON=/path/to/python3.11"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "telemetry-pipeline needs Python 3.11+; $(PYTHON) is " + sys.version.split()[0] + ": run make PYTHON=python3.11 (or newer)")'
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null \
		|| { echo "$(PYTHON) has no venv module: install it (Debian/Ubuntu: apt install python3-venv)"; exit 1; }
	@command -v $${CC:-cc} >/dev/null \
		|| { echo "no C compiler ($${CC:-cc}) on PATH: install one (Debian/Ubuntu: apt install gcc)"; exit 1; }
	@$(PYTHON) -c 'import os, sysconfig, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else "no Python.h for $(PYTHON): install its headers (Debian/Ubuntu: apt install python3-dev)")'
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
	$(BIN)/telemetry-pipeline demo $(DEMO_ARGS)

bench: venv
	$(BIN)/python benchmarks/throughput.py

lint: venv
	$(BIN)/ruff check .

# Maven's own download cache (~/.m2/repository, about 56 MB) is shared with every Maven build on
# this machine, so it is left alone (README, "What make needs").
# "[k]afka": the pattern must not match the shell running this recipe, whose command line holds it.
clean-cache:
	@if pgrep -f '[k]afka\.Kafka $(CACHE)/broker-' >/dev/null; then \
		echo "a broker started by 'telemetry-pipeline broker start' still runs from $(CACHE): stop it first"; \
		exit 1; fi
	rm -rf $(CACHE)
