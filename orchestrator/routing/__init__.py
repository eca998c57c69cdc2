"""The sans-I/O router: request-target and Host normalisation, and the http.sys-precedence route table.

Owns: ``normalize`` (bytes from the request line and Host header → the canonical path and host the
router and the workers see) and ``table`` (``RouteTable``: URL prefixes → targets). The Linux listener
calls both on every request; the HTTP.sys tier uses the table as its routing simulator.
Pure: imports only the standard library and ``orchestrator.model``; no I/O, no time.
"""

from orchestrator.routing.normalize import (
    HostError,
    HostPort,
    RequestRejected,
    RequestTarget,
    TargetError,
    normalize_host,
    normalize_path,
    normalize_target,
)
from orchestrator.routing.table import (
    NO_HOST,
    NO_PATH,
    Binding,
    DuplicatePrefixError,
    Match,
    NoHost,
    NoPath,
    RouteTable,
)

__all__ = [
    "NO_HOST",
    "NO_PATH",
    "Binding",
    "DuplicatePrefixError",
    "HostError",
    "HostPort",
    "Match",
    "NoHost",
    "NoPath",
    "RequestRejected",
    "RequestTarget",
    "RouteTable",
    "TargetError",
    "normalize_host",
    "normalize_path",
    "normalize_target",
]
