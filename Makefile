# Two commands run everything: `make run` (the main job) and `make test`.
# Both (re)create .venv from requirements.txt when it is missing or older than requirements.txt.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CONFIG ?= configs/translate_en_fr.yaml

# The data folder (../shared/data beside the checkout when present) and the quiet console are
# decided by the code itself (components/data/paths.py, components/console.py), so commands run
# outside make behave the same.

.PHONY: run test test-fast lint serve clean venv
venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m pipeline run $(CONFIG) $(ARGS)

# Style (ruff) and architecture contracts (import-linter), both configured in pyproject.toml.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

serve: $(STAMP)
	$(PY) -m pipeline serve $(ARGS)

clean:
	rm -rf work exports mlflow.db mlruns
