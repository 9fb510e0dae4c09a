#!/usr/bin/env bash
# Set up .venv and run `python train.py` with any flags given (none: the original program).
set -euo pipefail
source "$(dirname "$0")/setup.sh"
exec .venv/bin/python train.py "$@"
