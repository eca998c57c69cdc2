#!/usr/bin/env bash
# Set up .venv and run examples/quickstart in the foreground (Ctrl-C stops it).
# Then, from another terminal:  curl http://127.0.0.1:8080/hello/   and   .venv/bin/orchestrator status
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/orchestrator validate examples/quickstart
exec .venv/bin/orchestrator run examples/quickstart "$@"
