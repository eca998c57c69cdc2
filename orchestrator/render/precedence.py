"""Which URL group wins a request under http.sys and on a Gateway, computed for every overlap.

Owns: ``RoutedPrefix`` (one URL prefix of a rendered group), ``Divergence`` (a request the two models
route differently) and ``divergences`` (every such request found by probing each pair of prefixes).

The two models (issue 11, item 4):

- **http.sys** tries host buckets in order: strong ``+``, the explicit host, the IP-bound prefix of the
  connection's local address, weak ``*``; the first bucket with any path match wins, and within it the
  longest prefix. This is ``orchestrator.routing.RouteTable``, the listener's own table, so the answer
  is the one the Linux listener gives, not a second implementation of it.
- **the Gateway**, as ``render.kubernetes`` lays it out: one listener per (scheme, port, explicit host)
  and one without a hostname per (scheme, port) for the ``+``, ``*`` and IP-bound prefixes. A request
  goes to the listener with its exact hostname when there is one, else to the one without (Gateway API:
  the most specific listener hostname wins), and then to the longest ``PathPrefix`` of the routes
  attached to that listener; equal prefixes tie, and the Gateway breaks ties by the routes' creation
  time, then by name.

A pair of prefixes on the same scheme and port whose hosts can name one request is probed at both
paths, with a host and local address that reach both (a neutral name and address when neither
prefix fixes one). Any probe whose outcomes differ becomes a ``Divergence`` naming the pair.

Pure: standard library, ``orchestrator.model`` and ``orchestrator.routing``; no I/O, no time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from orchestrator.model.urlprefix import HostKind, UrlPrefix
from orchestrator.routing import Match, NoHost, RouteTable

__all__ = ["Divergence", "RoutedPrefix", "divergences", "gateway_route", "httpsys_route"]

#: Names and addresses used in probe requests when neither prefix of a pair fixes one (RFC 2606 and
#: RFC 5737 reserve them, so a manifest is unlikely to use them; the first unused one is taken).
_NEUTRAL_HOSTS = ("example.com", "example.net", "example.org", "www.example.com")
_NEUTRAL_IPS = ("192.0.2.1", "198.51.100.1", "203.0.113.1", "192.0.2.2")


@dataclass(frozen=True, slots=True, order=True)
class RoutedPrefix:
    """One URL prefix of a URL group that is rendered (enabled, with an enabled queue)."""

    group: str
    prefix: UrlPrefix


@dataclass(frozen=True, slots=True)
class Probe:
    """A request: scheme and local port, the local address it arrived on, Host and path."""

    scheme: str
    port: int
    local_ip: str
    host: str
    path: str

    def __str__(self) -> str:
        host = self.host if self.host else self.local_ip
        return f"GET {self.scheme}://{host}:{self.port}{self.path}"


@dataclass(frozen=True, slots=True)
class Divergence:
    """A request http.sys and the Gateway route differently, found by probing two groups' prefixes."""

    first: RoutedPrefix
    second: RoutedPrefix
    request: Probe
    httpsys: str
    gateway: str

    def message(self) -> str:
        """The warning text: both groups, the example request and both outcomes."""
        arrived = (
            f" (arriving on local address {self.request.local_ip})"
            if self.request.local_ip in (_bare(self.first.prefix), _bare(self.second.prefix))
            else ""
        )
        return (
            f'URL groups "{self.first.group}" ({self.first.prefix}) and "{self.second.group}" '
            f"({self.second.prefix}) overlap, and the Gateway routes differently: "
            f"{self.request}{arrived} goes to {self.httpsys} under http.sys but to "
            f"{self.gateway} on the Gateway"
        )


def _bare(prefix: UrlPrefix) -> str:
    """The host of an IP-bound prefix without IPv6 brackets; ``""`` for any other host."""
    if prefix.host_kind is not HostKind.IP:
        return ""
    return prefix.host.strip("[]")


def _outcome(group: str, prefix: UrlPrefix) -> str:
    return f'"{group}" ({prefix})'


def httpsys_route(table: RouteTable[str], probe: Probe) -> str:
    """Where http.sys sends ``probe``: a group and its prefix, or the status it answers."""
    found = table.lookup(probe.scheme, probe.port, probe.local_ip, probe.host, probe.path)
    if isinstance(found, Match):
        return _outcome(found.target, found.prefix)
    if isinstance(found, NoHost):
        return "400 Invalid Hostname (no prefix for this host)"
    return "404 (no prefix matches the path)"


def _path_matches(prefix_path: str, path: str) -> bool:
    # PathPrefix matches whole path elements, and a trailing slash is ignored: "/app/" matches
    # "/app", "/app/" and "/app/x", never "/apple" (the same rule as http.sys, but case-sensitive).
    return path == prefix_path.rstrip("/") or path.startswith(prefix_path) or prefix_path == "/"


def gateway_route(routes: Sequence[RoutedPrefix], probe: Probe) -> str:
    """Where the rendered Gateway sends ``probe``: a group and its prefix, or what it answers."""
    on_port = [r for r in routes if r.prefix.scheme == probe.scheme and r.prefix.port == probe.port]
    if not on_port:
        return "no listener (the connection is refused)"
    exact = [
        r
        for r in on_port
        if r.prefix.host_kind is HostKind.EXPLICIT and r.prefix.host == probe.host.lower()
    ]
    listener = exact or [r for r in on_port if r.prefix.host_kind is not HostKind.EXPLICIT]
    if not listener:
        return "404 (no listener for this hostname)"
    matching = [r for r in listener if _path_matches(r.prefix.path, probe.path)]
    if not matching:
        return "404 (no route matches the path)"
    longest = max(len(r.prefix.path.rstrip("/")) for r in matching)
    best = sorted(r for r in matching if len(r.prefix.path.rstrip("/")) == longest)
    if len({r.group for r in best}) > 1:
        names = ", ".join(f'"{g}"' for g in sorted({r.group for r in best}))
        return f"whichever of {names} was created first (equal prefixes tie; then by name)"
    return _outcome(best[0].group, best[0].prefix)


def _can_share_a_request(a: UrlPrefix, b: UrlPrefix) -> bool:
    if (a.scheme, a.port) != (b.scheme, b.port):
        return False
    kinds = (a.host_kind, b.host_kind)
    if kinds == (HostKind.EXPLICIT, HostKind.EXPLICIT) or kinds == (HostKind.IP, HostKind.IP):
        return a.host == b.host
    return True


def _unused(candidates: Iterable[str], used: set[str]) -> str:
    for value in candidates:
        if value not in used:
            return value
    return f"unused-{len(used)}.example"


def _probes(a: UrlPrefix, b: UrlPrefix, hosts: set[str], ips: set[str]) -> list[Probe]:
    pair = (a, b)
    explicit = [p.host for p in pair if p.host_kind is HostKind.EXPLICIT]
    bound = [_bare(p) for p in pair if p.host_kind is HostKind.IP]
    local_ip = bound[0] if bound else _unused(_NEUTRAL_IPS, ips)
    if explicit:
        host = explicit[0]
    elif bound:
        host = next(p.host for p in pair if p.host_kind is HostKind.IP)
    else:
        host = _unused(_NEUTRAL_HOSTS, hosts)
    paths = sorted({a.path, b.path}, key=lambda p: (len(p), p))
    return [Probe(a.scheme, a.port, local_ip, host, path) for path in paths]


def divergences(routes: Sequence[RoutedPrefix]) -> list[Divergence]:
    """Every probe request on which http.sys and the Gateway pick different outcomes.

    Args:
        routes: the prefixes of every rendered URL group.

    Returns:
        One ``Divergence`` per distinct request, in a fixed order (by the pair, then the path); a
        request reached from several pairs is reported once, for the first pair.
    """
    ordered = sorted(set(routes))
    table = RouteTable.build((r.prefix, r.group) for r in ordered)
    hosts = {r.prefix.host for r in ordered if r.prefix.host_kind is HostKind.EXPLICIT}
    ips = {_bare(r.prefix) for r in ordered if r.prefix.host_kind is HostKind.IP}
    seen: set[Probe] = set()
    out: list[Divergence] = []
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if a.group == b.group or not _can_share_a_request(a.prefix, b.prefix):
                continue
            for probe in _probes(a.prefix, b.prefix, hosts, ips):
                if probe in seen:
                    continue
                seen.add(probe)
                httpsys, gateway = httpsys_route(table, probe), gateway_route(ordered, probe)
                if httpsys != gateway:
                    out.append(Divergence(a, b, probe, httpsys, gateway))
    return out
