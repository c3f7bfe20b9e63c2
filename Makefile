# `make demo` sets up .venv and reads every stream from the local fake Kustomer API; `make test` runs every test:
# pytest (unit, integration, standard suite, PyAirbyte), then the Docker image built and run without a daemon.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: install demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m integration_tests.demo

test: install
	$(PY) -m pytest
	bash image/build_and_run.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
