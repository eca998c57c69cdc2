"""The route table: http.sys bucket precedence, longest prefix, trailing slash, NoHost and NoPath."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.model.urlprefix import parse_prefix
from orchestrator.routing.normalize import TargetError, normalize_path
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


def build(prefixes: dict[str, str]) -> RouteTable[str]:
    """A table whose targets are the names of the prefixes."""
    return RouteTable.build((parse_prefix(url), name) for name, url in prefixes.items())


def route(
    prefixes: dict[str, str],
    *,
    scheme: str = "http",
    port: int = 80,
    ip: str = "127.0.0.1",
    host: str = "a.com",
    path: str = "/",
) -> str | NoHost | NoPath:
    """The name of the prefix a request reaches, or NO_HOST / NO_PATH."""
    result = build(prefixes).lookup(scheme, port, ip, host, path)
    return result.target if isinstance(result, Match) else result


PRECEDENCE = [
    # (id, prefixes, request, expected)
    (
        "strong beats explicit even with a shorter path",
        {"S": "http://+:80/", "E": "http://a.com:80/app/deep/"},
        {"path": "/app/deep/x"},
        "S",
    ),
    (
        "strong beats IP-bound even with a shorter path",
        {"S": "http://+:80/a/", "I": "http://127.0.0.1:80/a/b/"},
        {"path": "/a/b/c"},
        "S",
    ),
    (
        "strong beats weak even with a shorter path",
        {"S": "http://+:80/a/", "W": "http://*:80/a/b/"},
        {"path": "/a/b/c"},
        "S",
    ),
    (
        "explicit beats IP-bound even with a shorter path",
        {"E": "http://a.com:80/", "I": "http://127.0.0.1:80/x/y/"},
        {"path": "/x/y/z"},
        "E",
    ),
    (
        "explicit beats weak even with a shorter path",
        {"E": "http://a.com:80/x/", "W": "http://*:80/x/y/"},
        {"path": "/x/y/z"},
        "E",
    ),
    (
        "IP-bound beats weak even with a shorter path",
        {"I": "http://127.0.0.1:80/", "W": "http://*:80/x/y/"},
        {"path": "/x/y/z"},
        "I",
    ),
    (
        "all four buckets: strong wins where it matches",
        {
            "S": "http://+:80/s/",
            "E": "http://a.com:80/",
            "I": "http://127.0.0.1:80/",
            "W": "http://*:80/",
        },
        {"path": "/s/x"},
        "S",
    ),
    (
        "a strong bucket without a path match is skipped for explicit",
        {"S": "http://+:80/api/", "E": "http://a.com:80/", "W": "http://*:80/"},
        {"path": "/other"},
        "E",
    ),
    (
        "strong and explicit without a match are skipped for IP-bound",
        {
            "S": "http://+:80/api/",
            "E": "http://a.com:80/e/",
            "I": "http://127.0.0.1:80/",
            "W": "http://*:80/",
        },
        {"path": "/other"},
        "I",
    ),
    (
        "every bucket without a match is skipped for weak",
        {
            "S": "http://+:80/api/",
            "E": "http://a.com:80/e/",
            "I": "http://127.0.0.1:80/i/",
            "W": "http://*:80/",
        },
        {"path": "/other"},
        "W",
    ),
    (
        "an explicit prefix for another host does not apply",
        {"E": "http://b.com:80/", "W": "http://*:80/"},
        {"host": "a.com"},
        "W",
    ),
    (
        "an explicit host matches case-insensitively",
        {"E": "http://A.com:80/", "W": "http://*:80/"},
        {"host": "a.COM"},
        "E",
    ),
    (
        "a request without a host skips the explicit bucket",
        {"E": "http://a.com:80/", "W": "http://*:80/"},
        {"host": ""},
        "W",
    ),
    (
        "an IP-bound prefix for another local address does not apply",
        {"I": "http://10.0.0.1:80/", "W": "http://*:80/"},
        {"ip": "127.0.0.1"},
        "W",
    ),
    (
        "IP-bound matches the local IPv6 address",
        {"I": "http://[::1]:80/", "W": "http://*:80/"},
        {"ip": "::1"},
        "I",
    ),
    (
        "IP-bound matches a bracketed, uncompressed local IPv6 address",
        {"I": "http://[::1]:80/", "W": "http://*:80/"},
        {"ip": "[0:0:0:0:0:0:0:1]"},
        "I",
    ),
    (
        "an IPv4-mapped local address counts as IPv4",
        {"I": "http://127.0.0.1:80/", "W": "http://*:80/"},
        {"ip": "::ffff:127.0.0.1"},
        "I",
    ),
    (
        "an IPv6 Host header reaches an explicit-less table through the wildcards",
        {"W": "http://*:80/"},
        {"host": "[::1]", "ip": "::1"},
        "W",
    ),
]


@pytest.mark.parametrize(
    ("prefixes", "request_", "expected"),
    [pytest.param(p, r, e, id=i) for i, p, r, e in PRECEDENCE],
)
def test_the_first_bucket_with_a_path_match_wins(
    prefixes: dict[str, str], request_: dict[str, str], expected: str
) -> None:
    """Buckets are searched strong, explicit, IP-bound, weak; the first with any match wins."""
    assert expected == route(prefixes, **request_)  # type: ignore[arg-type]


NESTED = {"A": "http://+:80/", "B": "http://+:80/a/", "C": "http://+:80/a/b/"}


@pytest.mark.parametrize(
    ("prefixes", "path", "expected"),
    [
        (NESTED, "/a/b/c", "C"),
        (NESTED, "/a/b/", "C"),
        (NESTED, "/a/b", "C"),
        (NESTED, "/a/bc", "B"),
        (NESTED, "/a/", "B"),
        (NESTED, "/a", "B"),
        (NESTED, "/ab", "A"),
        (NESTED, "/", "A"),
        ({"E": "http://a.com:80/", "F": "http://a.com:80/x/y/"}, "/x/y/z", "F"),
        ({"I": "http://127.0.0.1:80/x/", "J": "http://127.0.0.1:80/x/y/"}, "/x/y", "J"),
        ({"W": "http://*:80/x/", "V": "http://*:80/x/y/z/"}, "/x/y/q", "W"),
        # siblings never shadow each other
        ({"P": "http://+:80/p/q/", "Q": "http://+:80/p/r/"}, "/p/r/s", "Q"),
        ({"P": "http://+:80/p/q/", "Q": "http://+:80/p/r/"}, "/p/s", NO_PATH),
    ],
)
def test_the_longest_prefix_wins_within_a_bucket(
    prefixes: dict[str, str], path: str, expected: str | NoPath
) -> None:
    """Within one bucket the longest matching path prefix is chosen."""
    assert expected == route(prefixes, path=path)


APP = {"A": "http://+:80/app/"}
APP_V1 = {"V": "http://+:80/app/v1/"}


@pytest.mark.parametrize(
    ("prefixes", "path", "expected"),
    [
        (APP, "/app", "A"),
        (APP, "/app/", "A"),
        (APP, "/app/x", "A"),
        (APP, "/apple", NO_PATH),
        (APP, "/app.x", NO_PATH),
        (APP, "/ap", NO_PATH),
        (APP, "/", NO_PATH),
        (APP_V1, "/app/v1", "V"),
        (APP_V1, "/app/v1x", NO_PATH),
        (APP_V1, "/app", NO_PATH),
        (APP_V1, "/app/", NO_PATH),
    ],
)
def test_a_path_reaches_a_prefix_only_by_whole_segments(
    prefixes: dict[str, str], path: str, expected: str | NoPath
) -> None:
    """'/app' reaches '/app/' (the prefix less its slash), '/apple' does not."""
    assert expected == route(prefixes, path=path)


@pytest.mark.parametrize(
    ("prefix", "path"),
    [
        ("http://+:80/App/", "/APP/x"),
        ("http://+:80/app/", "/aPp"),
        ("http://+:80/%7Euser/", "/~USER/x"),
        ("http://+:80/a%3fb/", "/A%3Fb/"),
    ],
)
def test_paths_match_case_insensitively(prefix: str, path: str) -> None:
    """Prefix and request paths are compared without regard to case."""
    assert "P" == route({"P": prefix}, path=path)


PORTS = {
    "H80": "http://+:80/",
    "H81": "http://+:81/",
    "S443": "https://+:443/",
    "S80": "https://+:80/",
}


@pytest.mark.parametrize(
    ("scheme", "port", "expected"),
    [
        ("http", 80, "H80"),
        ("http", 81, "H81"),
        ("https", 443, "S443"),
        ("https", 80, "S80"),
        ("http", 443, NO_HOST),
        ("https", 81, NO_HOST),
        ("http", 8080, NO_HOST),
    ],
)
def test_scheme_and_port_select_separate_tables(
    scheme: str, port: int, expected: str | NoHost
) -> None:
    """Only prefixes with the request's scheme and the connection's port take part."""
    assert expected == route(PORTS, scheme=scheme, port=port)


@pytest.mark.parametrize(
    ("prefixes", "request_", "expected"),
    [
        pytest.param({}, {}, NO_HOST, id="empty table"),
        pytest.param(
            {"E": "http://a.com:80/x/"}, {"path": "/y"}, NO_PATH, id="known host, other path"
        ),
        pytest.param(
            {"E": "http://a.com:80/x/"},
            {"host": "b.com", "path": "/x/"},
            NO_HOST,
            id="unknown host, even on a registered path",
        ),
        pytest.param(
            {"E": "http://a.com:80/x/"},
            {"host": "", "path": "/x/"},
            NO_HOST,
            id="no host with only explicit prefixes",
        ),
        pytest.param(
            {"S": "http://+:80/x/"},
            {"host": "anything", "path": "/y"},
            NO_PATH,
            id="a strong wildcard knows every host",
        ),
        pytest.param(
            {"W": "http://*:80/x/"},
            {"host": "anything", "path": "/y"},
            NO_PATH,
            id="a weak wildcard knows every host",
        ),
        pytest.param(
            {"I": "http://127.0.0.1:80/x/"},
            {"ip": "127.0.0.1", "path": "/y"},
            NO_PATH,
            id="IP-bound knows every host on its address",
        ),
        pytest.param(
            {"I": "http://127.0.0.1:80/x/"},
            {"ip": "10.0.0.2", "path": "/x/"},
            NO_HOST,
            id="IP-bound does not know another address",
        ),
        pytest.param(
            {"I": "http://10.0.0.1:80/"},
            {"ip": "127.0.0.1", "host": "10.0.0.1"},
            NO_HOST,
            id="the Host header does not select an IP-bound prefix",
        ),
        pytest.param(
            {"I": "http://10.0.0.1:80/"},
            {"ip": "not-an-ip"},
            NO_HOST,
            id="an unparsable local address matches no IP-bound prefix",
        ),
        pytest.param(
            {"H": "https://a.com:443/"},
            {"path": "/"},
            NO_HOST,
            id="a host known on another port is unknown here",
        ),
    ],
)
def test_no_host_and_no_path_are_told_apart(
    prefixes: dict[str, str], request_: dict[str, str], expected: NoHost | NoPath
) -> None:
    """NoHost (400) when nothing is registered for the host here; NoPath (404) when its paths miss."""
    assert expected == route(prefixes, **request_)  # type: ignore[arg-type]


def test_no_host_and_no_path_carry_the_http_sys_answers() -> None:
    """The listener answers NoHost with 400 'Hostname' and NoPath with 404."""
    assert ((400, "Hostname"), (404, "NotFound")) == (
        (NO_HOST.status, NO_HOST.reason),
        (NO_PATH.status, NO_PATH.reason),
    )


@pytest.mark.parametrize(
    ("prefix", "path", "base", "info"),
    [
        ("http://+:80/app/", "/App/x/y", "/App", "/x/y"),
        ("http://+:80/app/", "/App", "/App", ""),
        ("http://+:80/app/", "/App/", "/App", "/"),
        ("http://+:80/a/b/", "/A/B", "/A/B", ""),
        ("http://+:80/", "/x", "", "/x"),
        ("http://+:80/", "/", "", "/"),
    ],
)
def test_a_match_splits_the_path_into_base_and_rest(
    prefix: str, path: str, base: str, info: str
) -> None:
    """path_base is what the prefix consumed (request case, no trailing slash); path_info the rest."""
    table = RouteTable.build([(parse_prefix(prefix), "P")])
    expected = Match("P", parse_prefix(prefix), base, info)
    assert expected == table.lookup("http", 80, "127.0.0.1", "a.com", path)


PUBLIC_ADMIN = {"A": "http://+:80/public/", "B": "http://+:80/admin/"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/public/..%2fadmin/x", 400),
        (b"/public/..%2Fadmin/x", 400),
        (b"/public/%2e%2e%2fadmin/x", 400),
        (b"/public/..%5cadmin/x", 400),
        (b"/public/..\\admin/x", 400),
        (b"/%2e%2e/admin/", 400),
        (b"/public/%2e%2e/%2e%2e/admin/", 400),
        (b"/admin%00/x", 400),
        (b"/public/%00/../../admin/x", 400),
        (b"/admin/%0d%0aX-Injected:%20y", 400),
        (b"/public/%2e%2e/admin/x", ("B", "/admin/x")),
        (b"/public/.%2e/admin/x", ("B", "/admin/x")),
        (b"/public//..//admin/x", ("B", "/admin/x")),
        (b"/public/x/../../admin/y", ("B", "/admin/y")),
        (b"//admin/x", ("B", "/admin/x")),
        (b"/%61dmin/x", ("B", "/admin/x")),
        (b"/ADMIN/x", ("B", "/ADMIN/x")),
        (b"/admin", ("B", "/admin")),
        (b"/public/x/../y", ("A", "/public/y")),
        (b"/public/./x", ("A", "/public/x")),
        (b"/public/%252e%252e/admin/x", ("A", "/public/%252e%252e/admin/x")),
        (b"/public/..;/admin/x", ("A", "/public/..;/admin/x")),
        (b"/public/%2e%2e", 404),
        (b"/publicadmin/", 404),
        (b"/admin/../x", 404),
    ],
)
def test_path_tricks_never_escape_a_prefix(raw: bytes, expected: int | tuple[str, str]) -> None:
    """Catalogue item 12: an ambiguous target is a 400; anything else is routed on the normalised path
    and that same path is forwarded, so a worker only ever receives paths inside its own prefix."""
    assert expected == listener_answer(raw)


def listener_answer(raw: bytes) -> int | tuple[str, str]:
    """What the listener does with a target on the PUBLIC_ADMIN table: a status, or the route and the
    path it forwards (checked to lie inside the route's prefix)."""
    try:
        path = normalize_path(raw)
    except TargetError as exc:
        return exc.status_hint
    result = build(PUBLIC_ADMIN).lookup("http", 80, "127.0.0.1", "a.com", path)
    if not isinstance(result, Match):
        return result.status
    lowered = path.lower()
    assert lowered.startswith(result.prefix.path) or lowered + "/" == result.prefix.path
    return (result.target, path)


@pytest.mark.parametrize(
    ("prefixes", "expected"),
    [
        (["http://+:80/"], {Binding("http", None, 80)}),
        (["http://*:80/", "http://a.com:80/x/"], {Binding("http", None, 80)}),
        (["http://a.com:8080/"], {Binding("http", None, 8080)}),
        (
            ["http://127.0.0.1:8080/a/", "http://127.0.0.1:8080/b/", "http://[::1]:8080/"],
            {Binding("http", "127.0.0.1", 8080), Binding("http", "::1", 8080)},
        ),
        (
            ["http://+:80/", "http://127.0.0.1:80/x/"],
            {Binding("http", None, 80)},
        ),
        (
            ["https://a.com:443/", "http://10.0.0.1:80/", "http://*:81/"],
            {
                Binding("https", None, 443),
                Binding("http", "10.0.0.1", 80),
                Binding("http", None, 81),
            },
        ),
        ([], set()),
    ],
)
def test_ports_are_what_the_listener_binds(prefixes: list[str], expected: set[Binding]) -> None:
    """Wildcards and names bind every address; an IP-bound prefix binds its own, unless subsumed."""
    table = RouteTable.build((parse_prefix(p), p) for p in prefixes)
    assert expected == table.ports()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("http://+:80/a/", "http://+:80/a/"),
        ("http://+:80/A/", "http://+:80/a/"),
        ("http://Host:80/", "http://host:80/"),
        ("http://[::1]:80/", "http://[0::1]:80/"),
    ],
)
def test_a_prefix_given_twice_is_refused(first: str, second: str) -> None:
    """http.sys refuses a second registration of the same prefix; so does the table."""
    with pytest.raises(DuplicatePrefixError, match="registered twice"):
        RouteTable.build([(parse_prefix(first), 1), (parse_prefix(second), 2)])


def test_the_same_path_on_different_hosts_ports_or_schemes_is_not_a_duplicate() -> None:
    """Only the whole canonical prefix identifies a registration."""
    urls = [
        "http://+:80/a/",
        "http://*:80/a/",
        "http://h:80/a/",
        "http://+:81/a/",
        "https://+:80/a/",
    ]
    assert 5 == len(RouteTable.build((parse_prefix(u), u) for u in urls))


@pytest.mark.parametrize("path", ["", "app/", "/caf\u00e9/", "/\u0130/"])
def test_a_path_that_was_not_normalised_is_refused(path: str) -> None:
    """Lookup takes normalize_path's output only: ASCII, beginning with '/'."""
    table = build({"R": "http://+:80/"})
    with pytest.raises(ValueError, match="not normalised"):
        table.lookup("http", 80, "127.0.0.1", "a.com", path)


def test_a_table_is_immutable_and_keeps_its_entries() -> None:
    """A built table cannot be changed; it still lists what it was built from, in order."""
    entries = [(parse_prefix("http://+:80/b/"), "B"), (parse_prefix("http://+:80/a/"), "A")]
    table = RouteTable.build(iter(entries))
    with pytest.raises(dataclasses.FrozenInstanceError):
        table._entries = ()  # type: ignore[misc]
    assert (tuple(entries), entries) == (table.entries, list(table))
