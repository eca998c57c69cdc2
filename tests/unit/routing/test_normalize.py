"""Request-target and Host normalisation: what is rewritten, what is refused (catalogue item 12)."""

from __future__ import annotations

import re

import pytest

from orchestrator.routing.normalize import (
    HostError,
    HostPort,
    RequestTarget,
    TargetError,
    normalize_host,
    normalize_path,
    normalize_target,
)


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b"/", "/"),
        (b"/app", "/app"),
        (b"/App/Index.HTML", "/App/Index.HTML"),
        (b"/app/", "/app/"),
        (b"/.well-known/acme", "/.well-known/acme"),
        # duplicate slashes
        (b"//", "/"),
        (b"///a//b///", "/a/b/"),
        (b"//evil.example/x", "/evil.example/x"),
        # dot segments (RFC 3986 §5.2.4)
        (b"/a/../b", "/b"),
        (b"/a/./b", "/a/b"),
        (b"/a/b/..", "/a/"),
        (b"/a/b/../", "/a/"),
        (b"/a/.", "/a/"),
        (b"/a/..", "/"),
        (b"/a/b/../../c", "/c"),
        (b"/a//../b", "/b"),
        (b"/a/..b/.c/c..", "/a/..b/.c/c.."),
        # escapes of unreserved characters are decoded, case kept; others stay, hex uppercased
        (b"/%41%62%7e%2D%5f", "/Ab~-_"),
        (b"/a/%2e%2e/b", "/b"),
        (b"/a/.%2E/b", "/b"),
        (b"/a/%2e/b", "/a/b"),
        (b"/a%20b", "/a%20b"),
        (b"/a%3fb%3Fc", "/a%3Fb%3Fc"),
        (b"/%c3%a9t%C3%A9", "/%C3%A9t%C3%A9"),
        (b"/%252e%252e/x", "/%252e%252e/x"),
        (b"/a%2Bb", "/a%2Bb"),
        # characters RFC 3986 does not allow raw in a path are encoded
        (b"/a|b", "/a%7Cb"),
        (b'/"<>[]^`{}', "/%22%3C%3E%5B%5D%5E%60%7B%7D"),
        # sub-delims, ':' and '@' are ordinary path characters
        (b"/a;b=c/d:e@f!$&'()*+,", "/a;b=c/d:e@f!$&'()*+,"),
    ],
)
def test_paths_normalise(raw: bytes, path: str) -> None:
    """Dot segments and '//' go, unreserved escapes are decoded, the case of the path is kept."""
    assert path == normalize_path(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "must begin with '/'"),
        (b"*", "only for OPTIONS"),
        (b"app/x", "must begin with '/'"),
        (b"example.com:443", "must begin with '/'"),
        # climbing above the root is refused, not clamped
        (b"/..", "climbs above the root"),
        (b"/../x", "climbs above the root"),
        (b"/%2e%2e/", "climbs above the root"),
        (b"/%2E%2E/x", "climbs above the root"),
        (b"/a/../../x", "climbs above the root"),
        (b"/./../x", "climbs above the root"),
        # encoded separators
        (b"/a%2fb", "encoded path separator %2F"),
        (b"/a%2Fb", "encoded path separator %2F"),
        (b"/a%5cb", "encoded path separator %5C"),
        (b"/public/..%2fadmin/x", "encoded path separator %2F"),
        # encoded controls
        (b"/a%00", "encoded control character %00"),
        (b"/a%0d%0aSet-Cookie:%20x", "encoded control character %0D"),
        (b"/a%0a", "encoded control character %0A"),
        (b"/a%09", "encoded control character %09"),
        (b"/a%7f", "encoded control character %7F"),
        # raw bytes
        (b"/a\\b", "a backslash"),
        (b"/a\x00b", "raw byte 0x00"),
        (b"/a\rb", "raw byte 0x0D"),
        (b"/a b", "raw byte 0x20"),
        (b"/a\x7f", "raw byte 0x7F"),
        (b"/caf\xc3\xa9", "raw byte 0xC3"),
        (b"/a#frag", "a fragment"),
        # bad escapes
        (b"/a%", "does not start a %XX escape"),
        (b"/a%4", "does not start a %XX escape"),
        (b"/a%zz", "does not start a %XX escape"),
        (b"/a%%41", "does not start a %XX escape"),
        # queries are raw but still free of controls, spaces, non-ASCII and fragments
        (b"/a?b c", "query contains the raw byte 0x20"),
        (b"/a?b#c", "query contains a fragment"),
        (b"/a?\xff", "query contains the raw byte 0xFF"),
        # absolute form
        (b"ftp://h/x", "must be http or https"),
        (b"http://user@h/x", "user information"),
        (b"http:///x", "authority: Host is empty"),
        (b"http://h:0/x", "authority: port '0'"),
        (b"http://h\\x/", "authority contains a forbidden byte"),
        (b"http://h/../x", "climbs above the root"),
    ],
)
def test_ambiguous_targets_are_refused(raw: bytes, message: str) -> None:
    """Anything two servers could read differently is a 400, with a message saying why."""
    with pytest.raises(TargetError, match=re.escape(message)) as caught:
        normalize_target(raw)
    assert (400, "URL") == (caught.value.status_hint, caught.value.reason)


@pytest.mark.parametrize(
    ("raw", "target"),
    [
        (b"/a?b=c&d", RequestTarget("/a", "b=c&d")),
        (b"/a?", RequestTarget("/a", "")),
        (b"/a/../b?x=/../%2f", RequestTarget("/b", "x=/../%2f")),
        (b"/a?b?c", RequestTarget("/a", "b?c")),
        (
            b"http://Example.COM:8080/A/./b?q",
            RequestTarget("/A/b", "q", "http", HostPort("example.com", 8080)),
        ),
        (b"HTTPS://[::1]", RequestTarget("/", None, "https", HostPort("[::1]", None))),
        (b"http://h?q", RequestTarget("/", "q", "http", HostPort("h", None))),
    ],
)
def test_targets_split_into_path_query_and_authority(raw: bytes, target: RequestTarget) -> None:
    """The query is split off raw; absolute form reports its scheme and normalised authority."""
    assert target == normalize_target(raw)


def test_normalize_path_takes_the_path_of_an_absolute_form_target() -> None:
    """normalize_path accepts absolute form and drops authority and query."""
    assert "/x/y" == normalize_path(b"http://host:80//x/./y?z")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"example.com", HostPort("example.com", None)),
        (b"Example.COM:8080", HostPort("example.com", 8080)),
        (b"example.com.", HostPort("example.com", None)),
        (b"example.com.:80", HostPort("example.com", 80)),
        (b" example.com\t", HostPort("example.com", None)),
        (b"my_host", HostPort("my_host", None)),
        (b"localhost:00080", HostPort("localhost", 80)),
        (b"127.0.0.1", HostPort("127.0.0.1", None)),
        (b"10.1.2.3:65535", HostPort("10.1.2.3", 65535)),
        (b"[::1]", HostPort("[::1]", None)),
        (b"[0:0:0:0:0:0:0:1]:8080", HostPort("[::1]", 8080)),
        (b"[2001:DB8::A]", HostPort("[2001:db8::a]", None)),
        (b"[::ffff:127.0.0.1]", HostPort("[::ffff:7f00:1]", None)),
    ],
)
def test_hosts_normalise(raw: bytes, expected: HostPort) -> None:
    """Names are lowercased without a trailing dot; IPv6 is bracketed and compressed."""
    assert expected == normalize_host(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "Host is empty"),
        (b"  ", "Host is empty"),
        (b"exa\xc3\xa9mple.com", "non-ASCII"),
        (b":80", "has a port but no host"),
        (b"host:", "port ''"),
        (b"host:0", "port '0'"),
        (b"host:65536", "port '65536'"),
        (b"host:123456", "port '123456'"),
        (b"host:8o", "port '8o'"),
        (b"host:+80", "port '+80'"),
        (b"::1", "must be in brackets"),
        (b"[::1", "missing its closing ']'"),
        (b"[::1]x", "unexpected 'x'"),
        (b"[::g]", "is not an IPv6 address"),
        (b"[127.0.0.1]", "is not an IPv6 address"),
        (b"[fe80::1%25eth0]", "zone identifiers"),
        (b"1.2.3", "is not an IPv4 address"),
        (b"256.0.0.1", "is not an IPv4 address"),
        (b"010.0.0.1", "is not an IPv4 address"),
        (b"127.0.0.1.", "is not an IPv4 address"),
        (b"a..b", "is not a host name"),
        (b"-a.com", "is not a host name"),
        (b"a b", "is not a host name"),
        (b"user@host", "is not a host name"),
        (b"a%2eb", "is not a host name"),
        (b"a/b", "is not a host name"),
        (b"x" * 64 + b".com", "is not a host name"),
        ((b"a" * 63 + b".") * 4 + b"com", "is not a host name"),
    ],
)
def test_invalid_hosts_are_refused(raw: bytes, message: str) -> None:
    """An invalid Host is a 400 with the http.sys reason 'Hostname'."""
    with pytest.raises(HostError, match=re.escape(message)) as caught:
        normalize_host(raw)
    assert (400, "Hostname") == (caught.value.status_hint, caught.value.reason)
