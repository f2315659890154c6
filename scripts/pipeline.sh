#!/usr/bin/env bash
# Set up the environment if needed, then run the whole DVC pipeline (on the embedded synthetic
# dataset by default). Extra arguments go to `dvc repro`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" PYTHONUNBUFFERED=1 DVC_NO_ANALYTICS=1
dvc repro "$@"
dvc metrics show 2>/dev/null || true
