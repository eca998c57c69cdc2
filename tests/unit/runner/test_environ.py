"""The PEP 3333 environ built from a transport-neutral request."""

from __future__ import annotations

import io

import pytest

from orchestrator.runner.http11 import EmptyBody
from orchestrator.runner.wsgi import FileWrapper, Peer, Request, build_environ, split_host

UNIX_PEER = Peer(is_proxy=True)
TCP_PEER = Peer("192.0.2.9", 50123)


def request(
    target: str = "/",
    headers: list[tuple[str, str]] | None = None,
    *,
    peer: Peer = UNIX_PEER,
    method: str = "GET",
    version: str = "HTTP/1.1",
) -> Request:
    return Request(
        method,
        target,
        version,
        [("Host", "example.org")] if headers is None else headers,
        EmptyBody(),
        peer,
        server_name="127.0.0.1",
        server_port="8000",
    )


def test_the_required_pep3333_keys_are_present() -> None:
    """Every key PEP 3333 requires, with SCRIPT_NAME empty and the multi-thread flags set."""
    errors = io.StringIO()
    req = request("/a/b?x=1&y=2")
    environ = build_environ(req, errors)
    assert {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/a/b",
        "QUERY_STRING": "x=1&y=2",
        "SERVER_NAME": "example.org",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }.items() <= environ.items()
    assert req.body is environ["wsgi.input"]
    assert errors is environ["wsgi.errors"]
    assert FileWrapper is environ["wsgi.file_wrapper"]
    assert "/a/b?x=1&y=2" == environ["RAW_URI"]


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/caf%C3%A9/%2Fx?q=%20", "/caf\xc3\xa9//x", "q=%20"),
        ("/a%20b", "/a b", ""),
        ("/?", "/", ""),
        ("http://example.org:8080/p/q?z", "/p/q", "z"),
        ("https://example.org", "/", ""),
        ("*", "*", ""),
    ],
)
def test_path_info_is_percent_decoded_latin1_and_absolute_form_is_reduced_to_its_path(
    target: str, path: str, query: str
) -> None:
    """PATH_INFO holds decoded bytes as latin-1 (PEP 3333); QUERY_STRING stays encoded."""
    environ = build_environ(request(target))
    assert (path, query) == (environ["PATH_INFO"], environ["QUERY_STRING"])


def test_headers_become_http_variables_and_repeats_are_joined() -> None:
    """``Cookie`` joins with ``; ``, others with ``,``; Content-* lose the HTTP_ prefix."""
    environ = build_environ(
        request(
            headers=[
                ("Host", "example.org"),
                ("Accept", "text/html"),
                ("accept", "text/plain"),
                ("Cookie", "a=1"),
                ("Cookie", "b=2"),
                ("Content-Type", "application/json"),
                ("Content-Length", "12"),
                ("X-Custom-Thing", "v"),
            ]
        )
    )
    assert "text/html,text/plain" == environ["HTTP_ACCEPT"]
    assert "a=1; b=2" == environ["HTTP_COOKIE"]
    assert "application/json" == environ["CONTENT_TYPE"]
    assert "12" == environ["CONTENT_LENGTH"]
    assert "v" == environ["HTTP_X_CUSTOM_THING"]
    assert "HTTP_CONTENT_TYPE" not in environ


def test_header_names_with_underscores_are_dropped() -> None:
    """``X_Forwarded_For`` must not pose as ``X-Forwarded-For`` (both map to one variable)."""
    environ = build_environ(
        request(headers=[("Host", "h"), ("X_Forwarded_For", "6.6.6.6"), ("Content_Length", "9")])
    )
    assert "HTTP_X_FORWARDED_FOR" not in environ
    assert "CONTENT_LENGTH" not in environ
    assert "" == environ["REMOTE_ADDR"]


def test_the_front_ends_forwarded_headers_set_remote_addr_and_scheme() -> None:
    """Over a Unix socket the peer is the front end: XFF's last hop is the client."""
    environ = build_environ(
        request(
            headers=[
                ("Host", "example.org"),
                ("X-Forwarded-For", "203.0.113.7, 198.51.100.2"),
                ("X-Forwarded-For", "2001:db8::1"),
                ("X-Forwarded-Proto", "HTTPS"),
            ]
        )
    )
    assert "2001:db8::1" == environ["REMOTE_ADDR"]
    assert "https" == environ["wsgi.url_scheme"]
    assert ("example.org", "443") == (environ["SERVER_NAME"], environ["SERVER_PORT"])


def test_forwarded_headers_from_a_tcp_peer_are_not_trusted() -> None:
    """A hand-run ``--bind HOST:PORT`` worker can be reached by anyone: the peer is the client."""
    environ = build_environ(
        request(
            headers=[("Host", "h"), ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https")],
            peer=TCP_PEER,
        )
    )
    assert ("192.0.2.9", "50123") == (environ["REMOTE_ADDR"], environ["REMOTE_PORT"])
    assert "http" == environ["wsgi.url_scheme"]


@pytest.mark.parametrize("value", ["not-an-ip", "", "1.2.3.4, junk"])
def test_an_unparseable_forwarded_for_falls_back_to_the_peer(value: str) -> None:
    """Garbage in X-Forwarded-For never becomes REMOTE_ADDR."""
    environ = build_environ(request(headers=[("Host", "h"), ("X-Forwarded-For", value)]))
    assert "" == environ["REMOTE_ADDR"]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.org", ("example.org", "80")),
        ("example.org:8080", ("example.org", "8080")),
        ("[::1]:9000", ("[::1]", "9000")),
        ("[::1]", ("[::1]", "80")),
        ("example.org:junk", ("example.org", "80")),
    ],
)
def test_server_name_and_port_come_from_host(host: str, expected: tuple[str, str]) -> None:
    """The port defaults by scheme; IPv6 literals keep their brackets."""
    assert expected == split_host(host, "80")


def test_without_host_the_listening_address_is_the_server_name() -> None:
    """HTTP/1.0 requests may omit Host."""
    environ = build_environ(request(headers=[], version="HTTP/1.0"))
    assert ("127.0.0.1", "8000") == (environ["SERVER_NAME"], environ["SERVER_PORT"])


def test_file_wrapper_iterates_blocks_and_closes_the_file() -> None:
    """``wsgi.file_wrapper`` reads in blocks and exposes the file's close()."""
    f = io.BytesIO(b"abcdefg")
    wrapper = FileWrapper(f, 3)
    assert [b"abc", b"def", b"g"] == list(wrapper)
    wrapper.close()
    assert f.closed
