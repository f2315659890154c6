#!/usr/bin/env bash
# Set up the environment if needed, then run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
AVS_EXTRAS=test bash scripts/setup.sh
# the explorer's browser test drives Debian's Chromium; without it (no root, no apt) that test is skipped
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) >&2 \
    || echo "warning: could not install chromium; the browser test will be skipped" >&2
fi
export PATH="$PWD/.venv/bin:$PATH" PYTHONUNBUFFERED=1 DVC_NO_ANALYTICS=1
python -m stages.deps --check  # dvc.yaml's code deps = the stages' import closure
python -m pytest -q -n 2 --dist loadscope --no-loadscope-reorder "$@"  # two workers: tests/conftest.py
