#!/usr/bin/env bash
# Set up .venv and run examples/quickstart in the foreground (Ctrl-C stops it).
# Then, from another terminal:  curl http://127.0.0.1:8080/hello/   and   .venv/bin/orchestrator status
# The dashboard's URL is printed below and again by the controller once it serves ("dashboard: URL").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/orchestrator validate examples/quickstart
echo "quickstart: the apps at http://127.0.0.1:8080/hello/ and http://127.0.0.1:8080/notes/," \
  "the dashboard at http://127.0.0.1:9180/"
exec .venv/bin/orchestrator run examples/quickstart "$@"
