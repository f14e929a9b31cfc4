# Sourced by scripts/start and scripts/test: a virtualenv with the pinned dependencies, made once.
# $1: the pip extras to install ("" or "test").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
extras="${1:-}"
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-${extras:-base}"
if [ ! -f "$stamp" ]; then
  if [ -n "$extras" ]; then .venv/bin/pip install --quiet -e ".[$extras]"; else .venv/bin/pip install --quiet -e .; fi
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
