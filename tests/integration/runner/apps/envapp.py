"""Reports which LISTEN_* variables the app can see (there should be none), and whether fd 3 leaks."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    seen = sorted(k for k in os.environ if k.startswith("LISTEN_"))
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
