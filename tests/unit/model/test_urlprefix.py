"""http.sys URL prefixes: the grammar, the canonical form and the host buckets."""

from __future__ import annotations

import re

import pytest

from orchestrator.model.urlprefix import HostKind, UrlPrefixError, parse_prefix


@pytest.mark.parametrize(
    ("text", "canonical", "kind"),
    [
        ("http://+:80/", "http://+:80/", HostKind.STRONG),
        ("http://*:8080/api/", "http://*:8080/api/", HostKind.WEAK),
        ("http://Example.COM:80/App/", "http://example.com:80/app/", HostKind.EXPLICIT),
        ("https://127.0.0.1:443/x/", "https://127.0.0.1:443/x/", HostKind.IP),
        ("http://[0:0::1]:80/", "http://[::1]:80/", HostKind.IP),
        ("http://+:80", "http://+:80/", HostKind.STRONG),
        ("http://+:80/%7euser/", "http://+:80/~user/", HostKind.STRONG),
        # Port 0: any free port, chosen by the Linux backend when it binds (tests use it).
        ("http://127.0.0.1:0/x/", "http://127.0.0.1:0/x/", HostKind.IP),
    ],
)
def test_prefixes_canonicalise(text: str, canonical: str, kind: HostKind) -> None:
    """Host and path are lowercased, IPv6 compressed, unreserved escapes decoded."""
    prefix = parse_prefix(text)
    assert canonical == str(prefix)
    assert kind == prefix.host_kind


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("HTTP://+:80/", "scheme must be lowercase"),
        ("ftp://+:80/", "scheme must be 'http' or 'https'"),
        ("http://+/", "port is mandatory"),
        ("http://+:080/", "without leading zeros"),
        ("http://+:70000/", "from 0 to 65535"),
        ("http://+:00/", "without leading zeros"),
        ("http://+:80/app", "must end with '/'"),
        ("http://+:80/a?b/", "query"),
        ("http://+:80/a#b/", "fragment"),
        ("http://+:80/a//b/", "empty segment"),
        ("http://+:80/a/../b/", "'..' segments"),
        ("http://+:80/a%2fb/", "encoded '/'"),
        ("http://+:80/a b/", "whitespace"),
        ("http://ex_ample:80/", "not '+', '*', an IP address or a host name"),
        ("http://user@host:80/", "user information"),
        ("http://[::1:80/", "IPv6"),
    ],
)
def test_prefixes_breaking_the_grammar_are_refused(text: str, message: str) -> None:
    """Each grammar rule has its own message saying what to write."""
    with pytest.raises(UrlPrefixError, match=re.escape(message)):
        parse_prefix(text)


def test_case_variants_are_the_same_registration() -> None:
    """http.sys treats host and path case-insensitively, so the canonical forms are equal."""
    assert parse_prefix("http://HOST:80/API/") == parse_prefix("http://host:80/api/")
