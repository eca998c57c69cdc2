#!/usr/bin/env bash
# Set up .venv with the test tools and run the whole test suite (extra arguments go to pytest).
# It runs on two pytest-xdist workers (about 6 minutes instead of 9.5 serially on 2 cores); the tests
# that share fixed names on the host stay in one serial group each (tests/conftest.py, SERIAL_GROUPS).
# ORCH_TEST_JOBS=0 runs everything in one process (for a debugger, or pytest -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
exec .venv/bin/python -m pytest -n "${ORCH_TEST_JOBS:-2}" --dist loadscope "$@"
