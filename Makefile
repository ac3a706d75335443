# Two commands are all a learner needs: `make demo` and `make test`.
# Both create .venv on first use and install this package into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-unit test-notebooks test-slow lint clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m course_lib demo

test: test-unit test-notebooks

test-unit: $(STAMP)
	$(PY) -m pytest -m "not slow" tests

test-notebooks: $(STAMP)
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
		CI=$${CI:-1} $(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks/; \
	else echo "no notebooks yet"; fi

test-slow: $(STAMP)
	$(PY) -m pytest -m "slow or gpu" tests

lint: $(STAMP)
	$(VENV)/bin/ruff check course_lib tests benchmarks

clean-venv:
	rm -rf $(VENV)
