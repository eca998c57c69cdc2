#!/usr/bin/env bash
# Create .venv with the system's python3 (world-readable, so workers running as other users can
# execute it) and install orchestrator into it, with the test tools (and the optional "kubernetes"
# extra the tests use) when given "test".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extra=""
# The tests also check rendered Kubernetes objects offline, which needs the "kubernetes" extra.
[ "${1:-}" = "test" ] && extra="[test,kubernetes]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extra}"
