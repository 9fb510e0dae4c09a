#!/usr/bin/env bash
# Set up .venv, lint, and run the test suite. The README's test command; CI runs it too.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
.venv/bin/python -m pip install --quiet ruff
.venv/bin/ruff check .
# Parallel test processes, one per core (pytest-xdist); tests that read one costly fixture share a process.
.venv/bin/python -m pytest -q --durations=15 -n auto --dist loadgroup "$@"
