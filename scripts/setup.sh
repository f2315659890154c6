#!/usr/bin/env bash
# Create .venv and install the project into it (editable). Idempotent: re-installs only when
# pyproject.toml changed since the last successful install. Needs Python >= 3.10.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip >&2
  .venv/bin/python -m pip install --quiet -e . >&2
  rm -f .venv/.installed-*
  touch "$stamp"
fi
