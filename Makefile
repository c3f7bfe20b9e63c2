# `make demo` sets up .venv and reads every stream from the local fake Kustomer API; `make test` runs every test:
# pytest (unit, integration, standard suite, PyAirbyte) on the first of Python $(TEST_PYTHONS) found on this machine,
# the unit tests and a full read on the others, each in its own virtualenv and at the same time (scripts/test.sh),
# then the Docker image built and run without a daemon.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# The image's Python and the oldest pyproject admits; image/build_and_run.sh runs the image on 3.11.
TEST_PYTHONS ?= 3.13 3.10

.PHONY: install demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m integration_tests.demo

test:
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/test.sh $(TEST_PYTHONS)

clean:
	rm -rf $(VENV) .venv-3.* build *.egg-info .pytest_cache
