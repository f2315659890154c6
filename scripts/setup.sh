#!/usr/bin/env bash
# Create .venv and install the project into it (editable), at the exact versions of constraints.txt.
# Idempotent: re-installs only when pyproject.toml or constraints.txt changed since the last
# successful install. Needs Python >= 3.10.
# AVS_EXTRAS=test (set by scripts/test.sh) adds the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extras=${AVS_EXTRAS:-}
hash=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
stamp=.venv/.installed-$hash-${extras:-base}
# an install with extras also serves a plain one
if [ ! -f "$stamp" ] && ! { [ -z "$extras" ] && compgen -G ".venv/.installed-$hash-*" >/dev/null; }; then
  .venv/bin/python -m pip install --quiet --upgrade pip >&2
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".${extras:+[$extras]}" >&2
  rm -f .venv/.installed-*
  touch "$stamp"
fi
