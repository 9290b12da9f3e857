# The two commands of the README, and the checks CI runs.
PYTHON ?= python3

.PHONY: install test peers lint bench

install:  ## install fhirtrial and convert the seed trial
	$(PYTHON) -m pip install --quiet .
	fhirtrial convert fixtures/seed/NCT06534528.json

peers:  ## Node.js test peers (Medplum engine, FHIR.js) and official FHIR packages, from npm
	bash scripts/setup-test-peers.sh

test: ## install test dependencies and run the whole suite
	$(PYTHON) -m pip install --quiet -e '.[test]'
	bash scripts/setup-test-peers.sh
	bash scripts/setup-browser.sh
	bash scripts/setup-postgres.sh
	$(PYTHON) -m pytest

lint:
	ruff check src tests bench

bench:  ## the benchmark suite (see bench/README.md)
	$(PYTHON) bench/run.py
