# clipbridge: `make test` runs the suite, `make run` the service. Both set up what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test run demo soak chaos lint bench bench-index clean deps-system

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# System programs the tests use: mosquitto and PostgreSQL (required: the tests start their own broker and their own
# throwaway cluster), Debian's docker-compose v1 (optional: validates docker-compose.yml offline; without it that
# one test is skipped) and Debian's chromium with a font (optional: the page's browser tests drive it by path; without
# it they are skipped, saying why).
# Installed with apt-get when root, else we say what to install.
APT := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
deps-system:
	@if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing mosquitto with apt-get"; \
	    apt-get update -qq && $(APT) mosquitto mosquitto-clients; \
	  else \
	    echo "mosquitto is missing: install it (Debian/Ubuntu: sudo apt-get install mosquitto mosquitto-clients)"; \
	    exit 1; \
	  fi; \
	fi
	@if [ -z "$$PG_TEST_URL" ] && ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing postgresql with apt-get"; \
	    apt-get update -qq && $(APT) postgresql; \
	  else \
	    echo "PostgreSQL is missing: install it (Debian/Ubuntu: sudo apt-get install postgresql) or set PG_TEST_URL"; \
	    exit 1; \
	  fi; \
	fi
	@if ! command -v docker-compose >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing docker-compose (v1, for offline validation of docker-compose.yml) with apt-get"; \
	  { apt-get update -qq && $(APT) docker-compose; } || echo "docker-compose could not be installed: its test is skipped"; \
	fi
	@if ! command -v chromium >/dev/null 2>&1 || [ ! -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium and fonts-dejavu-core (the page's browser tests) with apt-get"; \
	    { apt-get update -qq && $(APT) chromium fonts-dejavu-core; } \
	      || echo "chromium could not be installed: the browser tests (tests/test_page.py) are skipped"; \
	  else \
	    echo "chromium is missing: the browser tests are skipped (Debian: sudo apt-get install chromium fonts-dejavu-core)"; \
	  fi; \
	fi

test: $(STAMP) deps-system
	$(PY) -m ruff check clipbridge tests bench
	$(PY) -m ruff format --check clipbridge tests bench
	$(PY) -m mypy
	$(PY) -m pytest

run: $(STAMP)
	$(VENV)/bin/clipbridge --config config.yaml run

# A simulated camera, the service and one live incident for "now"; uses the broker on the configured port, or
# starts mosquitto with mosquitto/dev.conf. Ctrl-C stops everything it started.
demo: $(STAMP)
	$(VENV)/bin/clipbridge --config config.yaml demo

# The 5-minute soak (the suite runs a 30 s version): live footage, steady incidents, resources watched.
soak: $(STAMP) deps-system
	SOAK_SECONDS=300 $(PY) -m pytest tests/test_soak.py

# 5 minutes of chaos on three instances, one PostgreSQL and one broker (the suite runs 30 s): instances killed with
# kill -9 and restarted every few seconds, the broker and the database restarted once. CHAOS_SEED=<n> replays one run.
chaos: $(STAMP) deps-system
	CHAOS_SECONDS=300 $(PY) -m pytest tests/test_scaleout_faults.py -k chaos

# Benchmarks (never part of make test): about 11 minutes on 2 cores (6 of them section 6); bench/results/<date>.json and a table on stdout,
# each figure beside the first release's (bench/results/baseline-*.json).
bench: $(STAMP) deps-system
	$(PY) -m pip install --quiet py-spy pyinstrument  # profilers for the "where the time goes" tables
	$(PY) -m bench.run

# Section 6 alone (#11, the recordings index at archive scale): 2 x 1M empty files, 10M segments in memory, and the
# service's steady state with events and with polling; about 8 minutes.
bench-index: $(STAMP) deps-system
	$(PY) -m bench.run --sections 6

lint: $(STAMP)
	$(PY) -m ruff check clipbridge tests bench
	$(PY) -m ruff format --check clipbridge tests bench
	$(PY) -m mypy

clean:
	rm -rf $(VENV) .pytest_cache
