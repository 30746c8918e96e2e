# The two commands of the README. Both work on a fresh machine with Python 3.11 and Node 20.
PYTHON ?= python3
PORT ?= 5000
VENV ?= .venv

.PHONY: run test lock upgrade soak system-deps

# Installs take exactly the locked graph (requirements/*.txt: every package pinned, with hashes).
INSTALL = $(VENV)/bin/pip install --quiet --require-hashes --no-deps

run:  ## install into .venv and serve on http://localhost:$(PORT) with the embedded database
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(INSTALL) -r requirements/embedded.txt
	$(VENV)/bin/python manage.py runserver 0.0.0.0:$(PORT)

# The tiers after the unit one: every test under Daphne with the library tunings on (as
# served); the socket tests (recovery included) again with every tuning off, the libraries'
# own paths; the socket and scale-out tests under uvicorn, whose websocket and transport
# code differs from Daphne's (REST, media, browser and operations do not depend on it).
SOCKET_TESTS = tests/realtime
UVICORN_TESTS = tests/realtime tests/scale

test: system-deps  ## install everything (Python, Node, Redis, nginx, coturn, chromium); the import layers (.importlinter); the unit tier; every other test under Daphne; the socket tests with LIBRARY_TUNINGS=off; the socket and scale tests under uvicorn
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(INSTALL) -r requirements/dev.txt
	test ! -f tests/node/package-lock.json || npm ci --prefix tests/node --no-audit --no-fund
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m pytest tests/unit  # the fast tier first: pure code, no server, once
	CHILLOUT_TEST_SERVER=daphne $(VENV)/bin/python -m pytest --ignore=tests/unit
	LIBRARY_TUNINGS=off CHILLOUT_TEST_SERVER=daphne $(VENV)/bin/python -m pytest $(SOCKET_TESTS)
	CHILLOUT_TEST_SERVER=uvicorn $(VENV)/bin/python -m pytest $(UVICORN_TESTS)

MINUTES ?= 30
soak:  ## a soak of MINUTES (30) against a fresh Daphne on the embedded database: var/soak/soak.jsonl, soak.png, summary.json (FAULTS=1: two processes on Redis, the database, Redis and a server killed on a schedule)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(INSTALL) -r requirements/dev.txt
	$(VENV)/bin/python bench/soak.py --minutes $(MINUTES) --out var/soak$(if $(FAULTS),-faults --faults)

lock:  ## re-compile requirements/*.txt from requirements/*.in (locked versions that still fit are kept)
	test -x $(VENV)/bin/uv || { test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV); $(INSTALL) -r requirements/dev.txt; }
	$(VENV)/bin/python requirements/relock.py --uv $(VENV)/bin/uv

upgrade:  ## re-lock to the newest releases and install them; print which reach into a library needs re-checking, a short bench with the tunings on and off, then the unit tier
	test -x $(VENV)/bin/uv || { test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV); $(INSTALL) -r requirements/dev.txt; }
	$(VENV)/bin/python requirements/relock.py --uv $(VENV)/bin/uv --upgrade
	$(INSTALL) -r requirements/dev.txt
	-$(VENV)/bin/python -m chillout_project.tunings requirements/dev.txt  # RE-CHECK lines: those run the library's own path
	npm ci --prefix bench --no-audit --no-fund
	$(VENV)/bin/python bench/run.py --scenarios fanout,chat-closed,connections --tunings on,off
	$(VENV)/bin/python -m pytest tests/unit -q

# The scale-out tests start their own redis-server and nginx, the TURN tests their own coturn
# (`turnserver`), the browser tests Debian's chromium (Debian packages); nothing needs to be
# running. Installed with apt-get when missing (as root, else through sudo). Debian starts
# coturn as a system service on install: a coturn installed here is stopped and disabled
# again (tests/turn_relay.py starts its own on loopback; deploy/coturn is for production).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@PATH="$$PATH:/usr/sbin:/sbin"; had_turnserver=$$(command -v turnserver); \
	  command -v redis-server >/dev/null && command -v nginx >/dev/null \
	  && command -v chromium >/dev/null && test -n "$$had_turnserver" || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends redis-server nginx chromium coturn && \
	  { test -n "$$had_turnserver" || $(SUDO) systemctl disable --now coturn >/dev/null 2>&1 || true; }; }
