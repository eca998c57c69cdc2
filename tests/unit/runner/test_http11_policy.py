"""One HTTP/1.1 strictness policy: the runner's parser against the listener's (issue 14, item 5).

The runner keeps its own standard-library parser (``orchestrator.runner.http11``: httptools is missing on
Windows, and the runner may not import ``orchestrator.http1``). These tests feed the same bytes to

- the runner, the way ``connection.serve_connection`` reads a connection: ``BufferedReader`` over an
  in-memory ``recv``, ``read_head``, ``parse_request_head``, ``make_body`` and the body read to its end,
  request after request while the connection may be reused; and
- ``orchestrator.http1.RequestParser`` with the listener's default limits, the reference,

and compare the verdicts: every request served (method, target, version, header fields as the runner
exposes them, keep-alive, 100-continue, body bytes, whether the body completed), then how the stream ended
(refused with a status, cut short by EOF, idle at EOF, waiting for bytes, closed, or switched).

Inputs: the llhttp request corpus (tests/data/http/llhttp-requests.json, MIT) with its "Host added"
variants, and catalogue A (the tables of tests/unit/http1/test_catalogue_a.py, plus the inputs its other
tests build inline). Where the two may legitimately differ because the runner sits behind the listener,
the difference is listed in ``ALLOWED`` with its reason, and pinned exactly; everything else must match.

Also here: the runner takes whatever the listener would forward for every input the listener accepts
(the re-serialised head, re-chunked body), the runner's limits give http1's statuses when http1 is set
to the same limits, and the runner's verdict does not depend on how the bytes were split into reads.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

import pytest

from orchestrator.http1 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Headers,
    ProtocolError,
    Request,
    RequestParser,
    State,
    origin_form,
    write_chunk,
    write_last_chunk,
    write_request_head,
)
from orchestrator.runner.connection import Limits
from orchestrator.runner.errors import ClientDisconnected, HttpError
from orchestrator.runner.http11 import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    BufferedReader,
    make_body,
    parse_request_head,
)
from tests.unit.http1._support import load_corpus, raw
from tests.unit.http1.test_catalogue_a import AT_LIMIT, LIMITS_REFUSED, REFUSED, SMUGGLING
from tests.unit.http1.test_llhttp_corpus import with_host

# --------------------------------------------------------------------------------------------------
# Verdicts

#: How a stream ended, when it was not refused with a status.
IDLE: Final = "idle"  # EOF between requests
WAITING: Final = "waiting"  # more bytes are needed (the head or body is incomplete, or none began)
CLOSED: Final = "closed"  # the last request ends the connection (Connection: close, HTTP/1.0)
SWITCHED: Final = "switched"  # http1 only: an upgrade request; what follows is not parsed as HTTP
CUT: Final = "cut"  # EOF inside a head or body: the runner closes without an answer, http1 says 400


@dataclass(frozen=True)
class Served:
    """One request as the app (runner) or the upstream (listener) would get it."""

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]  # lower-cased names, values as exposed (trimmed)
    keep_alive: bool
    expect_continue: bool
    body: bytes  # what was read before the body ended or failed
    complete: bool


@dataclass(frozen=True)
class Verdict:
    served: tuple[Served, ...]
    end: str | int  # one of the names above, or the refusal's status code

    def __str__(self) -> str:
        requests = ", ".join(
            f"{s.method} {s.target[:40]} {s.version} body={s.body[:16]!r}"
            + ("" if s.complete else " (incomplete)")
            for s in self.served
        )
        return f"[{requests}] then {self.end}"


class _Starved(Exception):
    """The in-memory peer has nothing more to send yet (a socket read that would block)."""


def run_runner(pieces: Iterable[bytes], *, eof: bool) -> Verdict:
    """The runner's verdict: its connection loop over an in-memory ``recv`` handing out ``pieces``."""
    queue = [p for p in pieces if p]
    queue.reverse()

    def recv(n: int) -> bytes:
        if not queue:
            if eof:
                return b""
            raise _Starved
        piece = queue.pop()
        if len(piece) > n:
            queue.append(piece[n:])
            piece = piece[:n]
        return piece

    limits = Limits()
    reader = BufferedReader(recv)
    served: list[Served] = []
    while True:
        try:
            raw_head = reader.read_head(limits.max_head_bytes)
            if raw_head is None:
                return Verdict(tuple(served), IDLE)
            head = parse_request_head(raw_head, limits.max_headers)
        except ClientDisconnected:
            return Verdict(tuple(served), CUT)
        except HttpError as exc:
            return Verdict(tuple(served), exc.status)
        except _Starved:
            return Verdict(tuple(served), WAITING)
        body = make_body(head, reader)
        data = bytearray()
        end: str | int | None = None
        try:
            # One byte at a time, so the bytes read before a failure are kept (the bodies are small).
            while piece := body.read(1):
                data += piece
        except ClientDisconnected:
            end = CUT
        except HttpError as exc:
            end = exc.status
        except _Starved:
            end = WAITING
        served.append(
            Served(
                head.method,
                head.target,
                head.version,
                tuple((name.lower(), value) for name, value in head.headers),
                head.keep_alive,
                head.expect_continue,
                bytes(data),
                end is None,
            )
        )
        if end is not None:
            return Verdict(tuple(served), end)
        if not head.keep_alive:
            return Verdict(tuple(served), CLOSED)


def run_listener(data: bytes, *, eof: bool, parser: RequestParser | None = None) -> Verdict:
    """http1's verdict on ``data`` in one read, then EOF if ``eof``."""
    p = parser if parser is not None else RequestParser()
    served: list[Served] = []
    request: Request | None = None
    body = bytearray()

    def finish(complete: bool) -> None:
        nonlocal request
        assert request is not None
        served.append(
            Served(
                request.method.decode("latin-1"),
                request.target.decode("latin-1"),
                "HTTP/" + request.http_version.decode(),
                tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in request.headers),
                request.keep_alive,
                request.expect_continue,
                bytes(body),
                complete,
            )
        )
        request = None
        body.clear()

    def drain() -> str:
        nonlocal request
        while True:
            event = p.next_event()
            if event is NEED_DATA:
                return WAITING
            if event is PAUSED:
                return SWITCHED if p.state is State.SWITCHED else CLOSED
            if isinstance(event, ConnectionClosed):
                return IDLE
            if isinstance(event, Request):
                request = event
            elif isinstance(event, Data):
                body.extend(event.data)
            elif isinstance(event, EndOfMessage):
                finish(True)

    end: str | int
    p.receive_data(data)
    try:
        end = drain()
        if eof:
            p.receive_data(b"")
            try:
                end = drain()
            except ProtocolError:
                end = CUT  # refused only once EOF said nothing more would come
    except ProtocolError as exc:
        end = exc.error_status_hint
    if request is not None:
        finish(False)
    return Verdict(tuple(served), end)


# --------------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class Case:
    id: str
    data: bytes
    eof: bool  # the client half-closes after sending (else: it waits for an answer)


def _corpus_cases() -> list[Case]:
    cases = []
    for c in load_corpus()["cases"]:
        cases.append(Case(f"llhttp {c['id']}", raw(c), bool(c["then_eof"])))
        if c["missing_host"]:
            cases.append(Case(f"llhttp+Host {c['id']}", with_host(raw(c)), bool(c["then_eof"])))
    return cases


H = b"Host: example.com\r\n"

# Catalogue A inputs that test_catalogue_a.py builds inside its tests rather than in a table.
CATALOGUE_INLINE: list[tuple[str, bytes, bool]] = [
    (
        "A9 three pipelined requests",
        b"POST /api/a HTTP/1.1\r\nHost: api.example\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /static/x HTTP/1.1\r\nHost: www.example\r\n\r\n"
        b"POST /api/b HTTP/1.1\r\nHost: api.example\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nde\r\n0\r\n\r\n",
        False,
    ),
    *(
        (f"A12 target {t.decode()}", b"GET " + t + b" HTTP/1.1\r\n" + H + b"\r\n", False)
        for t in (b"/%2e%2e/etc", b"/a/../b", b"//x", b"/%00", b"/%0d%0a", b"/a\\b", b"/a?b=c")
    ),
    ("A13 HTTP/1.2", b"GET / HTTP/1.2\r\n" + H + b"\r\n", False),
    (
        "A14 Expect: 100-continue",
        b"POST / HTTP/1.1\r\n" + H + b"Expect: 100-Continue\r\nContent-Length: 5\r\n\r\nhello",
        False,
    ),
    (
        "A15 forwarded fields",
        b"GET / HTTP/1.1\r\n" + H + b"X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n"
        b"Connection: X-Secret\r\nX-Secret: hunter2\r\nX-Kept: 1\r\n\r\n",
        False,
    ),
]

# Rules of http1/validate.py that neither the corpus nor catalogue A exercises.
EXTRA: list[tuple[str, bytes, bool]] = [
    (
        "Connection element not a token",
        b"GET / HTTP/1.1\r\n" + H + b"Connection: close;x\r\n\r\n",
        True,
    ),
    (
        "Connection with empty elements",
        b"GET / HTTP/1.1\r\n" + H + b"Connection: , close ,\r\n\r\n",
        False,
    ),
    ("HTTP/1.9 served as 1.1", b"GET / HTTP/1.9\r\n" + H + b"Connection: close\r\n\r\n", False),
    ("PRI as an HTTP/1.1 method", b"PRI / HTTP/1.1\r\n" + H + b"\r\n", True),
    ("OPTIONS *", b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", False),
    (
        "absolute-form https with port",
        b"GET HTTPS://Example.com:8443/p?q HTTP/1.1\r\n" + H + b"\r\n",
        False,
    ),
    (
        "absolute-form, port too big",
        b"GET http://example.com:65536/ HTTP/1.1\r\n" + H + b"\r\n",
        True,
    ),
    ("absolute-form, other scheme", b"GET ftp://example.com/ HTTP/1.1\r\n" + H + b"\r\n", True),
    ("Host IPv6 with port", b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", False),
    ("Host percent-encoded", b"GET / HTTP/1.1\r\nHost: ex%41mple.com\r\n\r\n", True),
    ("HTTP/1.0 with an invalid Host", b"GET / HTTP/1.0\r\nHost: a b\r\n\r\n", True),
    (
        "TE upper case",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: CHUNKED\r\n\r\n1\r\na\r\n0\r\n\r\n",
        False,
    ),
    (
        "TE trailing tab",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n",
        True,
    ),
    (
        "TE element not a token",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gz@p, chunked\r\n\r\n",
        True,
    ),
    ("CL leading zeros", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0003\r\n\r\nabc", False),
    (
        "chunk ext quoted",
        b"POST / HTTP/1.1\r\n"
        + H
        + b'Transfer-Encoding: chunked\r\n\r\n1;a="b c\\"d"\r\nx\r\n0\r\n\r\n',
        False,
    ),
    (
        "chunk ext name only",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n1;a;b=c\r\nx\r\n0;z\r\n\r\n",
        False,
    ),
    (
        "chunk ext empty value",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1;a=\r\nx\r\n0\r\n\r\n",
        True,
    ),
    (
        "chunk ext space before =",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1;a =b\r\nx\r\n0\r\n\r\n",
        True,
    ),
    (
        "chunk size 16 hex digits",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n0000000000000001\r\nx\r\n0\r\n\r\n",
        False,
    ),
    (
        "trailer fields",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\n",
        False,
    ),
    (
        "trailer space before colon",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX : y\r\n\r\n",
        True,
    ),
    (
        "trailer obs-fold",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n z\r\n\r\n",
        True,
    ),
    (
        "trailer without colon",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nXy\r\n\r\n",
        True,
    ),
    (
        "trailer NUL",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\x00b\r\n\r\n",
        True,
    ),
    ("bare CR in a head still arriving", b"GET / HTTP/1.1\r\n" + H + b"X: a\rb", False),
    ("bare LF in a head still arriving", b"GET / HTTP/1.1\nHost: example.com\r\n", False),
    ("unknown expectation", b"GET / HTTP/1.1\r\n" + H + b"Expect: the-unexpected\r\n\r\n", False),
    ("obs-text in a value", b"GET / HTTP/1.1\r\n" + H + b"X: caf\xe9\r\n\r\n", False),
]


def _catalogue_cases() -> list[Case]:
    cases = [Case(f"A {name}", data, True) for name, data, _, _ in REFUSED]
    cases += [Case(f"A limits {name}", data, False) for name, data, _, _ in LIMITS_REFUSED]
    cases += [Case(f"A at limit {name}", data, False) for name, data in AT_LIMIT]
    cases += [Case(f"A smuggling {name}", data, True) for name, data in SMUGGLING]
    cases += [Case(f"A {name}", data, eof) for name, data, eof in CATALOGUE_INLINE]
    return cases


CASES: Final = [
    *_corpus_cases(),
    *_catalogue_cases(),
    *(Case(f"extra {name}", data, eof) for name, data, eof in EXTRA),
]
assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"

# --------------------------------------------------------------------------------------------------
# The allow-list: every difference between the two verdicts that is legitimate by design.

ACCEPTS: Final = "accepts"  # the runner serves the request(s) the listener refuses


@dataclass(frozen=True)
class Allowed:
    """A known difference, pinned: the listener's end and the runner's, the rest still compared.

    Attributes:
        listener: the listener's end: a status, SWITCHED, or WAITING when the runner refuses what
            the listener serves.
        runner: ACCEPTS (the runner serves what the listener refuses, and refuses nothing), or the
            runner's end: a status, or WAITING for the rest of a head under its own larger bound.
        why: the reason the difference is legitimate.
    """

    listener: str | int
    runner: str | int
    why: str


# Reasons, each shared by the entries that cite it.
METHOD: Final = (
    "The listener refuses methods outside llhttp's method table (501 N/I, or 400 when llhttp knows the "
    "name only for RTSP): a limit of the tokenizer under the listener, not a framing rule. A method is "
    "any token (RFC 9110 §9.1) and an origin server that does not implement one answers 501 itself, "
    "which is the app's call. Nothing about where the request ends is ambiguous, and the runner never "
    "receives such a request from the listener."
)
UPGRADE: Final = (
    "The listener stops parsing after a request with Connection: upgrade, because it may switch "
    "protocols (SWITCHED), and marks it not keep-alive. The runner never switches (WSGI cannot answer "
    "101), so by RFC 9110 §7.8 the connection stays HTTP/1.1 and the bytes that follow are the next "
    "request. Upgrade and Connection are hop-by-hop: the listener never forwards them to a worker."
)
LIMITS: Final = (
    "The listener enforces the manifest's limits (defaults: request line 8 KiB -> 414; a field 8 KiB, "
    "the head 16 KiB, 100 fields -> 431; body 1 MiB -> 413) before any byte reaches a worker. The "
    "runner's bounds are a backstop above them (a 64 KiB head, MAX_HEADERS fields, no body limit: the "
    "app streams the body), since the listener adds fields to what it forwards; "
    "test_the_runners_limits_give_http1s_statuses holds the runner's statuses to http1's at the "
    "runner's own limits."
)
EXPECT: Final = (
    "RFC 9110 §10.1.1 lets a server answer 417 to an expectation other than 100-continue; the runner "
    "does, the listener ignores it. The listener answers 100-continue itself and drops Expect before "
    "forwarding, so the runner sees Expect only when it is reached directly (--bind)."
)

ALLOWED: Final[dict[str, Allowed]] = {
    # -- methods llhttp does not know
    "llhttp invalid.md:HTTP protocol and ANNOUNCE method": Allowed(400, ACCEPTS, METHOD),
    # Refused by both: the listener names the method first, the runner the missing Host.
    "llhttp invalid.md:Invalid method": Allowed(501, 400, METHOD),
    "A unknown method": Allowed(501, ACCEPTS, METHOD),
    # -- upgrades
    "llhttp+Host connection.md:Multiple tokens with folding and LWS": Allowed(
        SWITCHED, ACCEPTS, UPGRADE
    ),
    "llhttp+Host connection.md:Setting a flag and pausing": Allowed(SWITCHED, ACCEPTS, UPGRADE),
    "llhttp+Host connection.md:Emitting part of body and pausing": Allowed(
        SWITCHED, ACCEPTS, UPGRADE
    ),
    "llhttp connection.md:Upgrade GET request": Allowed(SWITCHED, ACCEPTS, UPGRADE),
    "llhttp connection.md:Upgrade POST request": Allowed(SWITCHED, ACCEPTS, UPGRADE),
    # -- limits
    "A limits A11 request line 8 KiB + 1": Allowed(414, ACCEPTS, LIMITS),
    "A limits A11 field over the limit": Allowed(431, ACCEPTS, LIMITS),
    "A limits A11 head over 16 KiB": Allowed(431, ACCEPTS, LIMITS),
    "A limits A11 101 fields": Allowed(431, ACCEPTS, LIMITS),
    "A limits A11 CL 1 MiB + 1": Allowed(413, ACCEPTS, LIMITS),
    # The runner is still waiting for the end of a head shorter than its own 64 KiB bound.
    "A limits A11 head never ends": Allowed(431, WAITING, LIMITS),
    "A limits A11 request line never ends": Allowed(414, WAITING, LIMITS),
    # -- expectations
    "extra unknown expectation": Allowed(WAITING, 417, EXPECT),
}


def _without_upgrade_flag(served: tuple[Served, ...]) -> tuple[Served, ...]:
    # http1 marks an upgrade request not keep-alive (nothing after it is HTTP); the runner does not.
    return tuple(replace(s, keep_alive=True) for s in served)


def check_allowed(entry: Allowed, runner: Verdict, listener: Verdict) -> None:
    """The difference is exactly the one ``entry`` describes; everything else is still equal."""
    assert listener.end == entry.listener, f"listener: {listener}"
    n = len(listener.served)
    if entry.listener == SWITCHED:
        # Up to the upgrade request the two agree; after it, the runner goes on with HTTP/1.1.
        assert _without_upgrade_flag(runner.served[:n]) == _without_upgrade_flag(listener.served)
        assert entry.runner == ACCEPTS
        assert not isinstance(runner.end, int), f"runner: {runner}"
    elif entry.runner == ACCEPTS:
        # The runner serves the request(s) the listener refuses, and refuses nothing.
        assert runner.served[:n] == listener.served
        assert len(runner.served) > n, f"runner: {runner}"
        assert not isinstance(runner.end, int), f"runner: {runner}"
    elif isinstance(listener.end, int):
        # Both refuse the same request (or the runner is still waiting for it), differently.
        assert (listener.served, entry.runner) == (runner.served, runner.end), f"runner: {runner}"
    else:
        # The runner refuses the last request the listener serves.
        assert (listener.served[:-1], entry.runner) == (runner.served, runner.end), str(runner)


# --------------------------------------------------------------------------------------------------
# Tests


def test_the_inputs_are_the_whole_corpus_and_catalogue() -> None:
    """136 corpus cases plus 55 with Host added, and every catalogue A table in full."""
    corpus = [c for c in CASES if c.id.startswith("llhttp")]
    assert 136 + 55 == len(corpus)
    catalogue = [c for c in CASES if c.id.startswith("A ")]
    inline = len(CATALOGUE_INLINE)
    assert len(REFUSED) + len(LIMITS_REFUSED) + len(AT_LIMIT) + len(SMUGGLING) + inline == len(
        catalogue
    )


def test_every_allow_list_entry_names_a_case() -> None:
    """A stale entry would hide nothing, but it would mislead: every id must exist."""
    ids = {c.id for c in CASES}
    assert [] == [key for key in ALLOWED if key not in ids]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_the_runner_and_the_listener_give_the_same_verdict(case: Case) -> None:
    """Same requests served with the same fields and bodies, and the same refusal status; or
    exactly the difference the allow-list gives, with its reason."""
    runner = run_runner([case.data], eof=case.eof)
    listener = run_listener(case.data, eof=case.eof)
    entry = ALLOWED.get(case.id)
    if entry is None:
        assert runner == listener, f"\nrunner:   {runner}\nlistener: {listener}"
    else:
        check_allowed(entry, runner, listener)
        assert runner != listener, "allow-listed, but the verdicts agree: remove the entry"


def _split(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    pieces, i = [], 0
    while i < len(data):
        n = rng.randint(1, 9)
        pieces.append(data[i : i + n])
        i += n
    return pieces


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_the_runners_verdict_does_not_depend_on_read_boundaries(case: Case) -> None:
    """Byte by byte and in random pieces, the runner decides as it does on one read."""
    whole = run_runner([case.data], eof=case.eof)
    if len(case.data) <= 4096:
        bytewise = [case.data[i : i + 1] for i in range(len(case.data))]
        assert whole == run_runner(bytewise, eof=case.eof)
    assert whole == run_runner(_split(case.data, len(case.data)), eof=case.eof)


def at_runner_limits() -> RequestParser:
    """http1 set to the runner's own limits: it then gives the same statuses (414 for the request
    line, 431 for the head or the field count) and the same acceptances."""
    # http1 counts the final CRLF CRLF in the head, the runner does not.
    return RequestParser(
        max_url_bytes=MAX_HEAD_BYTES,
        max_field_bytes=MAX_HEAD_BYTES,
        max_header_bytes=MAX_HEAD_BYTES + 4,
        max_header_fields=MAX_HEADERS,
        max_body_bytes=None,
    )


def _forwarded(request: Request, body: bytes, trailers: Headers) -> bytes:
    """What the listener writes upstream for ``request`` (proxy._start_upstream, streaming)."""
    host = request.host or b"example.com"  # an HTTP/1.0 request without Host is routed by default
    head = write_request_head(
        request,
        x_forwarded_for=b"192.0.2.7",
        x_forwarded_proto=b"http",
        x_forwarded_host=host,
        forwarded=b'for="192.0.2.7";proto=http;host="%s"' % host,
        host=host,
        keep_alive=True,
        target=origin_form(request.target),
    )
    if not request.chunked:
        return head + body
    return head + write_chunk(body) + write_last_chunk(trailers)


def _accepted_requests() -> list[Any]:
    params: list[Any] = []
    for case in CASES:
        parser = RequestParser()
        parser.receive_data(case.data)
        request: Request | None = None
        body = b""
        try:
            while (event := parser.next_event()) not in (NEED_DATA, PAUSED):
                if isinstance(event, Request):
                    request, body = event, b""
                elif isinstance(event, Data):
                    body += event.data
                elif isinstance(event, EndOfMessage):
                    assert request is not None
                    upstream = _forwarded(request, body, event.trailers)
                    params.append(pytest.param(upstream, id=f"{case.id} #{len(params)}"))
                    request = None
                elif isinstance(event, ConnectionClosed):
                    break
        except ProtocolError:
            pass
    return params


ACCEPTED = _accepted_requests()


def test_the_forwarded_form_is_exercised_at_the_listeners_limits() -> None:
    """The 100-field and 8 KiB inputs the listener accepts are among the forwarded requests."""
    ids = [p.id for p in ACCEPTED]
    assert any(i.startswith("A at limit 100 fields") for i in ids)
    assert any(i.startswith("A at limit field line of exactly 8 KiB") for i in ids)
    assert 80 < len(ACCEPTED)


@pytest.mark.parametrize("upstream", ACCEPTED)
def test_what_the_listener_forwards_the_runner_serves(upstream: bytes) -> None:
    """Every request the listener accepts, as the listener writes it to a worker (Host, framing and
    the forwarding fields added), is served by the runner exactly as http1 reads it."""
    runner = run_runner([upstream], eof=False)
    assert (1, WAITING) == (len(runner.served), runner.end), str(runner)
    assert runner.served[0].complete
    # http1 set to the runner's limits reads it the same way (the listener's own limits are for
    # clients: the forwarded head of a request at 100 fields has up to 106).
    assert run_listener(upstream, eof=False, parser=at_runner_limits()) == runner


_LINE: Final = b"GET / HTTP/1.1\r\n"
_FILL: Final = MAX_HEAD_BYTES - len(_LINE + H) - len(b"X: ")  # a field that fills the head exactly
LIMIT_CASES: Final = [
    (
        "request line at the limit",
        b"GET /" + b"a" * (MAX_HEAD_BYTES - 14) + b" HTTP/1.1\r\n\r\n",
        True,
    ),
    (
        "request line over the limit",
        b"GET /" + b"a" * (MAX_HEAD_BYTES - 13) + b" HTTP/1.1\r\n\r\n",
        True,
    ),
    ("request line never ends", b"GET /" + b"a" * (MAX_HEAD_BYTES + 10), False),
    ("head at the limit", _LINE + H + b"X: " + b"v" * _FILL + b"\r\n\r\n", True),
    ("head over the limit", _LINE + H + b"X: " + b"v" * (_FILL + 1) + b"\r\n\r\n", True),
    ("head never ends", _LINE + H + b"X: " + b"v" * (MAX_HEAD_BYTES + 10), False),
    (
        "fields at the limit",
        _LINE + H + b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS - 1)) + b"\r\n",
        True,
    ),
    (
        "fields over the limit",
        _LINE + H + b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS)) + b"\r\n",
        True,
    ),
    (
        "CL 2**63 - 1",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % (2**63 - 1),
        False,
    ),
    ("CL 2**63", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % 2**63, True),
    (
        "CL 20 digits",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 00000000000000000001\r\n\r\nx",
        True,
    ),
]


@pytest.mark.parametrize(("data", "eof"), [pytest.param(d, e, id=i) for i, d, e in LIMIT_CASES])
def test_the_runners_limits_give_http1s_statuses(data: bytes, eof: bool) -> None:
    """Same verdict as http1 set to the runner's limits: 414, 431, 400, or served."""
    runner = run_runner([data], eof=eof)
    assert run_listener(data, eof=eof, parser=at_runner_limits()) == runner
