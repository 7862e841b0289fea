# The two commands of the README: `make run` and `make test`. Everything else
# they need is set up here, idempotently, from pyproject.toml + constraints.txt.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
FLASK  := $(BIN)/flask --app portal
PORT   ?= 5000

.PHONY: run test test-e2e worker scheduler lint bench install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(FLASK) db upgrade
	$(FLASK) ops seed-demo
	$(FLASK) run --host 127.0.0.1 --port $(PORT)

test: $(STAMP)
	$(BIN)/pytest

worker: $(STAMP)
	$(FLASK) worker

scheduler: $(STAMP)
	$(FLASK) scheduler

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check portal tests bench

bench: $(STAMP)
	$(BIN)/python bench/users_load.py

clean:
	rm -rf $(VENV) .pytest_cache
