# bottle-dash: `make run` starts the dashboard, `make test` runs every test tier.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-8)

.PHONY: run test host lint unit bench mutate clean

run: host $(STAMP)
	$(VENV)/bin/bottle-dash

test: host $(STAMP) lint
	$(PY) -m pytest -p no:cacheprovider -ra $(PYTEST_ARGS)

host:
	bash .ci/setup-host

$(STAMP):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,smolvm]'
	touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -q -m "unit or ui"

# Mutation run over the safety-relevant pure modules (slow; not part of `make test`).
mutate: $(STAMP)
	$(PY) .ci/mutate.py $(MUTATE_ARGS)

bench: host $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV)
