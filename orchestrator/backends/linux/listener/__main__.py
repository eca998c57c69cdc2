"""``python -m orchestrator.backends.linux.listener --channel-fd 3``: the listener process."""

import sys

from orchestrator.backends.linux.listener.app import main

sys.exit(main(sys.argv[1:]))
