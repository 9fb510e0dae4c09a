#!/usr/bin/env bash
# Set up a virtualenv in .venv (once) and run the test suite. The README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]' ruff
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
