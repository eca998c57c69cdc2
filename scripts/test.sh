#!/usr/bin/env bash
# Set up .venv with the test tools and run the whole test suite (extra arguments go to pytest).
# The suite runs on ORCH_TEST_JOBS pytest-xdist workers (default 2; 0 runs it in this process):
# most of its time is spent waiting on real processes, and the tests that share fixed names on the
# host stay in one serial group each (tests/conftest.py, SERIAL_GROUPS), on one worker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
exec .venv/bin/python -m pytest -n "${ORCH_TEST_JOBS:-2}" --dist loadscope "$@"
