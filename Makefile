# CareCircle developer commands. `make demo` and `make test` are the two that matter.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
COMPONENTS := common gateway platform device_sim ml
STAMP := $(VENV)/.installed

.PHONY: venv test test-fast lint audit demo bench soak clean

venv: $(STAMP)

$(STAMP): $(foreach c,$(COMPONENTS),$(c)/pyproject.toml) requirements-dev.txt tools/devdeps.py
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) tools/devdeps.py $(COMPONENTS) > $(VENV)/requirements.txt
	$(PY) -m pip install -q -r $(VENV)/requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps $(foreach c,$(COMPONENTS),-e ./$(c))
	touch $(STAMP)

# PYTHONDONTWRITEBYTECODE is emptied for the run: with it set (as in some shells and
# images) pytest cannot keep its rewritten test modules, and collecting the suite takes
# ~24 s instead of ~10 s on every run (and again inside tests/test_layout.py).  The
# caches are __pycache__/ folders, ignored by git.
test: venv
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest

# The whole circle on this machine (private PostgreSQL and Mosquitto unless
# CARECIRCLE_DATABASE_URL / CARECIRCLE_MQTT_URL are set); Ctrl-C stops everything.
DEMO_ARGS ?=
demo: venv
	$(VENV)/bin/carecircle demo $(DEMO_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Known vulnerabilities in installed third-party packages (pip-audit against PyPI's
# per-version API or OSV, whichever answers a probe).  Fails on a vulnerability; when no
# service answers it prints "WARNING: dependency audit NOT performed" and exits 0
# (AUDIT_FLAGS=--strict makes that exit 3).
audit: venv
	$(PY) tools/audit.py --python $(PY) $(AUDIT_FLAGS)

bench: venv
	@command -v wrk >/dev/null 2>&1 || { echo 'installing wrk, the API bench load generator'; \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }; \
	  else sudo -n apt-get install -y -qq wrk >/dev/null; fi; }
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Bounded soak run (reliability, issue 12): make soak MINUTES=20
MINUTES ?= 20
soak: venv
	$(VENV)/bin/python -m tests.reliability.soak --minutes $(MINUTES)
