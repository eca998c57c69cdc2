"""Properties (hypothesis): the trie equals a brute-force reader of the rules; normal paths stay normal."""

from __future__ import annotations

import ipaddress
from urllib.parse import unquote

from hypothesis import example, given, settings
from hypothesis import strategies as st

from orchestrator.model.urlprefix import HostKind, UrlPrefix, parse_prefix
from orchestrator.routing.normalize import TargetError, normalize_path
from orchestrator.routing.table import NO_HOST, NO_PATH, Match, NoHost, NoPath, RouteTable

BUCKET_ORDER = (HostKind.STRONG, HostKind.EXPLICIT, HostKind.IP, HostKind.WEAK)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def reference(
    entries: list[tuple[UrlPrefix, int]],
    scheme: str,
    port: int,
    local_ip: str,
    host: str,
    path: str,
) -> Match[int] | NoHost | NoPath:
    """DESIGN.md §6 read literally: filter, then the first bucket with any match, longest path."""

    def applies(prefix: UrlPrefix) -> bool:
        if (prefix.scheme, prefix.port) != (scheme, port):
            return False
        kind = prefix.host_kind
        if kind is HostKind.EXPLICIT:
            return prefix.host == host.lower()
        if kind is HostKind.IP:
            return _ip(prefix.host) == _ip(local_ip)
        return True

    candidates = [(prefix, target) for prefix, target in entries if applies(prefix)]
    if not candidates:
        return NO_HOST
    lowered = path.lower()
    for kind in BUCKET_ORDER:
        matching = [
            (prefix, target)
            for prefix, target in candidates
            if prefix.host_kind is kind
            and (lowered.startswith(prefix.path) or lowered == prefix.path[:-1])
        ]
        if matching:
            prefix, target = max(matching, key=lambda pair: len(pair[0].path))
            cut = len(prefix.path) - 1
            return Match(target, prefix, path[:cut], path[cut:])
    return NO_PATH


SEGMENTS = st.sampled_from(["a", "b", "ab", "x-y", "%7C"])
PREFIX_HOSTS = st.sampled_from(["+", "*", "a.com", "b.com", "127.0.0.1", "10.0.0.1", "[::1]"])
PREFIX_URLS = st.builds(
    lambda scheme, host, port, segments: (
        f"{scheme}://{host}:{port}/" + "".join(f"{s}/" for s in segments)
    ),
    st.sampled_from(["http", "http", "https"]),
    PREFIX_HOSTS,
    st.sampled_from([80, 80, 8080]),
    st.lists(SEGMENTS, max_size=3),
)
REQUEST_SEGMENTS = st.sampled_from(["a", "A", "b", "ab", "aB", "x-y", "X-Y", "abc", "%7c", "%7C"])
PATHS = st.builds(
    lambda segments, slash: "/" + "/".join(segments) + ("/" if slash and segments else ""),
    st.lists(REQUEST_SEGMENTS, max_size=5),
    st.booleans(),
)


@settings(max_examples=500, deadline=None)
@given(
    urls=st.sets(PREFIX_URLS, min_size=4, max_size=40),
    # Skewed towards the common scheme and port so that most requests meet some prefix.
    scheme=st.sampled_from(["http", "http", "http", "https"]),
    port=st.sampled_from([80, 80, 80, 8080, 9090]),
    local_ip=st.sampled_from(
        ["127.0.0.1", "10.0.0.1", "::1", "[::1]", "::ffff:127.0.0.1", "10.9.9.9"]
    ),
    host=st.sampled_from(["a.com", "A.COM", "b.com", "c.com", ""]),
    path=PATHS,
)
def test_the_trie_agrees_with_a_brute_force_reading_of_the_rules(
    urls: set[str], scheme: str, port: int, local_ip: str, host: str, path: str
) -> None:
    """For random prefix sets and requests, the table answers exactly what the rules say."""
    entries = [(parse_prefix(url), index) for index, url in enumerate(sorted(urls))]
    table = RouteTable.build(entries)
    expected = reference(entries, scheme, port, local_ip, host, path)
    assert expected == table.lookup(scheme, port, local_ip, host, path)


RAW_TARGETS = st.lists(
    st.sampled_from(
        [
            b"/",
            b"//",
            b".",
            b"..",
            b"%2e",
            b"%2E",
            b"%2f",
            b"%5c",
            b"%00",
            b"%0d",
            b"%25",
            b"%",
            b"%41",
            b"%7e",
            b"a",
            b"B",
            b"\\",
            b";",
            b"?",
            b"|",
            b"%3f",
            b"public",
            b"admin",
        ]
    ),
    max_size=12,
).map(lambda parts: b"/" + b"".join(parts))


@settings(max_examples=500, deadline=None)
@given(raw=RAW_TARGETS)
@example(raw=b"/public/%2e%2e/admin/")
@example(raw=b"/a/%2E./b/")
def test_a_normalised_path_is_canonical_and_decodes_to_the_same_segments(raw: bytes) -> None:
    """A normalised path has no '//', dot segment, separator escape or backslash; normalising it
    again changes nothing; and decoding it once (as a worker does) keeps its segment structure."""
    try:
        path = normalize_path(raw)
    except TargetError:
        return
    assert path.startswith("/")
    assert path == normalize_path(path.encode("ascii"))
    segments = path.split("/")[1:]
    interior = segments[:-1] if segments[-1] == "" else segments
    assert all(segment not in ("", ".", "..") for segment in interior)
    for forbidden in ("%2f", "%5c", "%2e", "%00", "\\", "?"):
        assert forbidden not in path.lower()
    decoded = [unquote(segment) for segment in segments]
    assert all("/" not in s and "\\" not in s and s not in (".", "..") for s in decoded)


@settings(max_examples=300, deadline=None)
@given(raw=RAW_TARGETS)
def test_a_routed_path_is_inside_the_prefix_that_routed_it(raw: bytes) -> None:
    """Whatever the target, the path forwarded with a match starts with that match's prefix."""
    table = RouteTable.build(
        [(parse_prefix("http://+:80/public/"), "A"), (parse_prefix("http://+:80/admin/"), "B")]
    )
    try:
        path = normalize_path(raw)
    except TargetError:
        return
    result = table.lookup("http", 80, "127.0.0.1", "h", path)
    if isinstance(result, Match):
        assert path == result.path_base + result.path_info
        assert result.path_base.lower() + "/" == result.prefix.path
        assert result.path_info in ("", "/") or result.path_info.startswith("/")
