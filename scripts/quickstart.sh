#!/usr/bin/env bash
# Set up .venv and check the quickstart example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/orchestrator validate examples/quickstart
