# Two commands on a fresh machine: `make demo` and `make test`. Only python3 (3.11+) is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv pgbouncer demo demo-stop test soak bench lint clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# The whole loop on the demo's own embedded server and database (never DB_URL's: DEMO_DB_URL=... chooses one).
# The server is stopped at the end; KEEP=1 keeps it running (make demo-stop stops it).
demo: venv
	KEEP="$(KEEP)" bash examples/demo.sh

demo-stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python examples/embedded_db.py --stop; fi

PG15_BINDIR ?= /usr/lib/postgresql/15/bin

# The PgBouncer tests need Debian's pgbouncer: installed here when missing (as root, with apt-get), so a fresh
# machine passes; anywhere else the tests that need it fail saying how to install it.
pgbouncer:
	@if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "== installing pgbouncer (Debian package) for the PgBouncer tests"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; \
	  else echo "== pgbouncer is not installed: tests/behaviour/test_pgbouncer.py will fail (apt-get install pgbouncer)"; fi; \
	fi

# Two pytest workers (pytest-xdist), each with its own server, one test module at a time: the tests mostly wait on
# subprocesses and the server, so one worker leaves the second core idle. TEST_WORKERS= runs them in one process.
TEST_WORKERS ?= -n 2 --dist loadfile

# The whole suite on PostgreSQL 18 (embedded), then the database tests again on PostgreSQL 15 where Debian's
# binaries are installed.
test: venv pgbouncer
	$(BIN)/python -m pytest -q $(TEST_WORKERS)
	@if [ -x $(PG15_BINDIR)/initdb ]; then \
	  echo "== again on PostgreSQL 15 ($(PG15_BINDIR))"; \
	  TEST_PG_BINDIR=$(PG15_BINDIR) $(BIN)/python -m pytest -q $(TEST_WORKERS) tests/behaviour; \
	else echo "== PostgreSQL 15 binaries not found at $(PG15_BINDIR): skipped the second server version"; fi

# The long form of the fault-injection tests (tests/behaviour/test_fault_injection.py): 200 migrations, runners
# killed, terminated and the server restarted at random points, on both server versions. Each trial's story is
# printed; SOAK_SEED=N replays the random choices of an earlier run.
soak: venv
	SOAK=1 $(BIN)/python -m pytest -q -s tests/behaviour/test_fault_injection.py
	@if [ -x $(PG15_BINDIR)/initdb ]; then \
	  echo "== again on PostgreSQL 15 ($(PG15_BINDIR))"; \
	  SOAK=1 TEST_PG_BINDIR=$(PG15_BINDIR) $(BIN)/python -m pytest -q -s tests/behaviour/test_fault_injection.py; \
	else echo "== PostgreSQL 15 binaries not found at $(PG15_BINDIR): skipped the second server version"; fi

bench: venv
	$(BIN)/python bench/bench_migrations.py
	$(BIN)/python bench/bench_snapshot.py
	$(BIN)/python bench/bench_fleet.py
	$(BIN)/python bench/bench_scaling.py
	bash bench/bench_peers.sh

clean:
	-$(BIN)/python examples/embedded_db.py --stop 2>/dev/null
	rm -rf $(VENV) .pgdata .demo
