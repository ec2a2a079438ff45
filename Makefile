# Two commands on a fresh machine: `make demo` and `make test`. Only python3 (3.11+) is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo test bench lint clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

demo: venv
	bash examples/demo.sh

test: venv
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python bench/bench_migrations.py

clean:
	-$(BIN)/python examples/embedded_db.py --stop 2>/dev/null
	rm -rf $(VENV) .pgdata .demo
