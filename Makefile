# Every target prepares .venv by itself: on a fresh clone `make demo` and `make test` are the whole set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint bench clean browser

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m local.demo

# Two workers that take pending tests from each other, so neither idles while the other has a queue
# (tests marked `slow` are collected first, see tests/conftest.py).
# Coverage of shared/ and functions/ (config in pyproject.toml); the run fails under the floor.
test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n 2 --dist worksteal --cov --cov-report=term-missing:skip-covered --cov-fail-under=96

# Headless Chromium and its driver from Debian's packages, for the access-review page's browser test
# (tests/cli/test_report.py skips without them, and fails under CI=true). Installed only where apt-get
# runs as root; elsewhere the reason is printed and the test says the same.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium and chromium-driver (apt-get)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	    || echo "apt-get could not install chromium: the report's browser test will skip (fail under CI=true)" >&2; \
	else echo "chromium is missing and apt-get is not usable here (not root?): the report's browser test will skip" >&2; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# One code package per function in build/<function>/ for `s deploy` (see local/build.py).
.PHONY: build
build: $(STAMP)
	$(BIN)/python -m local.build
