"""The URL-prefix route table: http.sys precedence, built once, looked up on every request.

Owns: ``RouteTable`` (generic in the route target), the lookup results ``Match``, ``NoHost`` and
``NoPath``, ``Binding`` (what the listener binds) and ``DuplicatePrefixError``.

The rules (DESIGN.md §6, "Routing Incoming Requests" in the HTTP Server API docs):

- Only prefixes with the request's scheme and the connection's local port take part.
- Their hosts fall in four buckets searched in order: strong ``+``; explicit names (only the one equal
  to the request's host, case-insensitively); IP-bound (only the one equal to the connection's *local*
  address, not the Host header); weak ``*``. **The first bucket with any path match wins**, even when a
  later bucket holds a longer prefix.
- Within a bucket the longest path prefix wins, compared case-insensitively; a path equal to a prefix
  without its trailing slash (``/app`` for ``/app/``) matches it, and nothing else does (``/apple``
  does not match ``/app/``).
- No bucket applies to the request at all → ``NoHost`` (http.sys: 400 "Invalid Hostname"); some bucket
  applies but no path matches → ``NoPath`` (404).

The buckets of a (scheme, port) share one segment trie, so a lookup walks the path once, one dict probe
per segment, whatever the number of prefixes; an unknown host is answered before any walk. A table is
immutable once built; the listener swaps whole tables, so a request is routed by exactly one version.

Must not import: anything but the standard library and ``orchestrator.model`` (no I/O, no time).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar, Generic, NamedTuple, TypeVar

from orchestrator.model.urlprefix import HostKind, UrlPrefix

__all__ = [
    "NO_HOST",
    "NO_PATH",
    "Binding",
    "DuplicatePrefixError",
    "Match",
    "NoHost",
    "NoPath",
    "RouteTable",
]

T = TypeVar("T")


class DuplicatePrefixError(ValueError):
    """The same canonical prefix was given twice (http.sys refuses the second registration)."""


class Match(NamedTuple, Generic[T]):
    """A routed request.

    ``path_base`` is the part of the request path the prefix consumed, without its trailing slash and
    in the request's case (``/App`` for prefix ``/app/``; ``""`` for ``/``); ``path_info`` is the rest
    (``""`` or beginning with ``/``). They are WSGI's ``SCRIPT_NAME`` and ``PATH_INFO``, ASP.NET's
    ``PathBase`` and ``Path``; ``path_base + path_info`` is the request path.

    A named tuple rather than a frozen dataclass because one is made per request, and a frozen
    dataclass's ``__init__`` costs more than the whole trie walk.
    """

    target: T
    prefix: UrlPrefix
    path_base: str
    path_info: str


@dataclass(frozen=True, slots=True)
class NoHost:
    """No prefix is registered for this scheme, port, host and local address: http.sys answers 400."""

    status: ClassVar[int] = 400
    #: The http.sys HTTPERR reason.
    reason: ClassVar[str] = "Hostname"


@dataclass(frozen=True, slots=True)
class NoPath:
    """The host is served on this port, but no prefix matches the path: 404."""

    status: ClassVar[int] = 404
    reason: ClassVar[str] = "NotFound"


NO_HOST = NoHost()
NO_PATH = NoPath()


class Binding(NamedTuple):
    """A listening socket the table needs: ``ip`` is ``None`` for every address, else a bare literal."""

    scheme: str
    ip: str | None
    port: int


class _Node(Generic[T]):
    """One trie node: the next path segments, and the prefixes ending here by bucket key.

    A bucket key is ``+`` (strong), ``*`` (weak), the host name (explicit) or ``@`` and the address
    (IP-bound: the ``@`` keeps a Host header that spells an address from selecting an IP-bound prefix).
    All buckets of a port share one trie, so a request walks its path once whatever the buckets.
    """

    __slots__ = ("children", "entries")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}
        self.entries: dict[str, tuple[UrlPrefix, T]] | None = None


class _PortRoutes(Generic[T]):
    """The prefixes of one (scheme, port): the shared trie and which buckets exist."""

    __slots__ = ("hosts", "ips", "root", "strong", "weak")

    def __init__(self) -> None:
        self.root: _Node[T] = _Node()
        #: The bucket keys present: "+" and "*" (or None when absent, so lookups skip them), the
        #: explicit host names and the "@"-addresses of IP-bound prefixes.
        self.strong: str | None = None
        self.weak: str | None = None
        self.hosts: set[str] = set()
        self.ips: set[str] = set()


@functools.lru_cache(maxsize=1024)
def _ip_key(text: str) -> str | None:
    """The bucket key of a local address (``@127.0.0.1``, ``@[::1]``), ``None`` if it is not one.

    Cached: a listener sees only the handful of addresses it is bound to, and parsing one costs more
    than the rest of a lookup.
    """
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        addr = ipaddress.ip_address(bare)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; they are IPv4 connections.
        if addr.ipv4_mapped is not None:
            return f"@{addr.ipv4_mapped}"
        return f"@[{addr.compressed}]"
    return f"@{addr}"


def _bucket_key(prefix: UrlPrefix, kind: HostKind) -> str:
    return "@" + prefix.host if kind is HostKind.IP else prefix.host


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class RouteTable(Generic[T]):
    """An immutable http.sys-style route table; build it with ``RouteTable.build``."""

    _routes: dict[tuple[str, int], _PortRoutes[T]]
    _entries: tuple[tuple[UrlPrefix, T], ...]
    _bindings: frozenset[Binding]

    @classmethod
    def build(cls, entries: Iterable[tuple[UrlPrefix, T]]) -> RouteTable[T]:
        """Build a table from canonical prefixes and their targets.

        Args:
            entries: ``(prefix, target)`` pairs, prefixes as returned by ``parse_prefix``.

        Returns:
            The table (build cost is linear in the total number of prefix segments).

        Raises:
            DuplicatePrefixError: two entries have the same prefix.
        """
        routes: dict[tuple[str, int], _PortRoutes[T]] = {}
        kept: list[tuple[UrlPrefix, T]] = []
        kinds: dict[str, HostKind] = {}
        for prefix, target in entries:
            kept.append((prefix, target))
            port_routes = routes.get((prefix.scheme, prefix.port))
            if port_routes is None:
                port_routes = routes[(prefix.scheme, prefix.port)] = _PortRoutes()
            # host_kind tries to parse the host as an IP address on every call (~10 us for a name),
            # and tables repeat hosts: read it once per host.
            kind = kinds.get(prefix.host)
            if kind is None:
                kind = kinds[prefix.host] = prefix.host_kind
            key = _bucket_key(prefix, kind)
            if kind is HostKind.EXPLICIT:
                port_routes.hosts.add(key)
            elif kind is HostKind.IP:
                port_routes.ips.add(key)
            elif kind is HostKind.STRONG:
                port_routes.strong = key
            else:
                port_routes.weak = key
            node = port_routes.root
            if prefix.path != "/":
                for segment in prefix.path[1:-1].split("/"):
                    child = node.children.get(segment)
                    if child is None:
                        child = node.children[segment] = _Node()
                    node = child
            if node.entries is None:
                node.entries = {}
            elif key in node.entries:
                # Same scheme, port, bucket key and path: the same canonical prefix.
                raise DuplicatePrefixError(f"URL prefix {prefix} is registered twice")
            node.entries[key] = (prefix, target)
        return cls(routes, tuple(kept), _bindings(routes))

    def lookup(
        self, scheme: str, local_port: int, local_ip: str, host: str, path: str
    ) -> Match[T] | NoHost | NoPath:
        """Route one request.

        Args:
            scheme: ``http`` or ``https``, from the socket the request arrived on.
            local_port: the port the connection arrived on (not the Host header's port).
            local_ip: the address the connection arrived on, as ``getsockname`` reports it (IPv6 with
                or without brackets; IPv4-mapped IPv6 counts as IPv4).
            host: the request's host without port, as ``normalize_host`` returns it (compared
                case-insensitively; ``""`` when the request has none).
            path: the request path as ``normalize_path`` returns it (ASCII, case kept).

        Returns:
            ``Match`` with the target, the prefix, ``path_base`` and ``path_info``; ``NO_HOST`` when no
            prefix is registered for this scheme, port, host and local address; ``NO_PATH`` when some
            are but none matches the path.

        Raises:
            ValueError: the path is not ASCII or does not begin with ``/`` (it was not normalised;
                lowercasing non-ASCII text can change its length and misplace ``path_base``).
        """
        if not path.isascii() or not path.startswith("/"):
            raise ValueError(f"path {path!r} is not normalised (see normalize_path)")
        port_routes = self._routes.get((scheme, local_port))
        if port_routes is None:
            return NO_HOST
        host_key: str | None = host.lower()
        if host_key not in port_routes.hosts:
            host_key = None
        ip_key = _ip_key(local_ip) if port_routes.ips else None
        if ip_key not in port_routes.ips:
            ip_key = None
        strong, weak = port_routes.strong, port_routes.weak
        if host_key is None and ip_key is None and strong is None and weak is None:
            return NO_HOST
        # Walk the path once, keeping the prefix sets met on the way, deepest last. Every node reached
        # matches: its segments equal the path's first segments and the path goes on after them or
        # ends there, with or without the slash (the "/app" -> "/app/" rule). An empty segment (last
        # only, in a normalised path) ends the walk, as a string-prefix comparison would.
        segments = path.lower().split("/")
        node = port_routes.root
        passed = [node.entries] if node.entries is not None else []
        children = node.children
        for index in range(1, len(segments)):
            child = children.get(segments[index])
            if child is None:
                break
            if child.entries is not None:
                passed.append(child.entries)
            children = child.children
        # Buckets in http.sys order; the first with any match wins, and its deepest match is the
        # longest prefix. Keys of buckets that are absent or do not apply are None.
        for key in (strong, host_key, ip_key, weak):
            if key is None:
                continue
            for entries in reversed(passed):
                found = entries.get(key)
                if found is not None:
                    return _match(found, path)
        return NO_PATH

    def ports(self) -> frozenset[Binding]:
        """The sockets the listener must bind for this table.

        ``+``, ``*`` and host-name prefixes need every address of their port (``ip=None``); an
        IP-bound prefix needs only its address, unless the same scheme and port already binds every
        address (which receives that address too, and could not be bound beside it).

        Returns:
            One ``Binding(scheme, ip, port)`` per socket; IPv6 literals without brackets.
        """
        return self._bindings

    @property
    def entries(self) -> tuple[tuple[UrlPrefix, T], ...]:
        """The ``(prefix, target)`` pairs the table was built from, in the order given."""
        return self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[tuple[UrlPrefix, T]]:
        return iter(self._entries)

    def __repr__(self) -> str:
        return f"<RouteTable of {len(self._entries)} prefixes on {len(self._routes)} ports>"


def _match(found: tuple[UrlPrefix, T], path: str) -> Match[T]:
    prefix, target = found
    # The path is ASCII (checked), so lowercasing kept its length: the prefix's length (less its
    # slash) is where the base ends in the original-case path too.
    cut = len(prefix.path) - 1
    return Match(target, prefix, path[:cut], path[cut:])


def _bindings(routes: dict[tuple[str, int], _PortRoutes[T]]) -> frozenset[Binding]:
    bindings: set[Binding] = set()
    for (scheme, port), port_routes in routes.items():
        if port_routes.strong or port_routes.weak or port_routes.hosts:
            bindings.add(Binding(scheme, None, port))
            continue
        for key in port_routes.ips:
            bindings.add(Binding(scheme, key[1:].strip("[]"), port))
    return frozenset(bindings)
