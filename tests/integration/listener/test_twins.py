"""The listener's fast path changes nothing a client can see: a differential test.

The same inputs go to three listeners: the compiled core (``_fast``), its pure-Python twin (``fast``)
and the general path alone (``ORCH_LISTENER_NO_FASTPATH``). Every host and path goes to a raw echo
worker (tests/support/apps/rawecho.py) that answers with the bytes it received, in the response
shape the query's ``r=`` asks for. The inputs are the llhttp request corpus, catalogue A's raw
requests and a seeded set of mutated heads; what each listener sends back, and whether it closed the
connection, must be the same bytes in all three modes.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import random
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from tests.integration.listener.conftest import (
    CORES,
    RAWECHO_POOL,
    Site,
    _site,
    catch_all_manifest,
    compiled_core_missing,
)
from tests.integration.listener.test_catalogue_a import REJECTS, SMUGGLING
from tests.integration.listener.test_llhttp_corpus import CASES, MISSING_HOST, _with_host
from tests.support.controller import wait_until

pytestmark = pytest.mark.integration

#: The modes compared, and the controller environment of each.
MODES: dict[str, dict[str, str]] = {
    "compiled": CORES["compiled"],
    "python": CORES["python"],
    "general": {"ORCH_LISTENER_NO_FASTPATH": "1"},
}
SEED = int(os.environ.get("ORCH_TWINS_SEED", "20261206"))
FUZZ_CASES = 400
QUIET_S, CAP_S = 0.4, 3.0  # a read ends after this much silence, or at the cap
RERUN_QUIET_S, RERUN_CAP_S = 1.5, 5.0
MAX_RERUNS = 12  # more differing inputs than this is no timing noise
PAUSE_S = 0.03  # between the chunks of one input
THREADS = 32

SHAPES = [
    "",
    "chunked",
    "close",
    "http10",
    "conn-close",
    "split",
    "big",
    "204",
    "304",
    "100",
    "upper",
    "te-and-cl",
    "extra",
]
# In a response body: the request reached the echo.
FORWARDED = b"\r\nx-forwarded-for: 127.0.0.1\r\n"

Outcome = tuple[bytes, bool]  # (everything received, closed by the listener)


@dataclass(frozen=True)
class Case:
    """One input: byte chunks sent PAUSE_S apart on a fresh connection (then EOF if half_close)."""

    name: str
    chunks: tuple[bytes, ...]
    half_close: bool = False


def _corpus_cases() -> list[Case]:
    out = []
    for c in CASES:
        raw = base64.b64decode(str(c["raw_b64"]))
        half = bool(c.get("then_eof") or c.get("unterminated_head"))
        out.append(Case(f"llhttp {c['id']}", (raw,), half))
    for c in MISSING_HOST:
        raw = _with_host(base64.b64decode(str(c["raw_b64"])))
        out.append(Case(f"llhttp+host {c['id']}", (raw,), bool(c.get("then_eof"))))
    return out


H = b"Host: 127.0.0.1\r\n"


def _catalogue_cases() -> list[Case]:
    """Catalogue A's raw requests: its tables, and the kinds its other tests send inline."""
    out = [Case(f"cat-a reject {name}", (raw,), True) for name, raw, _ in REJECTS]
    out += [Case(f"cat-a smuggle {name}", (raw,), True) for name, raw in SMUGGLING]
    inline = {
        "pipelined-three": b"GET /echo/one HTTP/1.1\r\n" + H + b"\r\nGET /admin/two HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n\r\nGET /echo/three HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
        "line-over-8KiB": b"GET /echo/" + b"a" * 8192 + b" HTTP/1.1\r\n" + H + b"\r\n",
        "field-over-limit": b"GET /echo/a HTTP/1.1\r\n" + H + b"X-Big: %s\r\n\r\n" % (b"b" * 16384),
        "too-many-fields": b"GET /echo/a HTTP/1.1\r\n"
        + H
        + b"".join(b"X-%d: v\r\n" % i for i in range(101))
        + b"\r\n",
        "cl-over-1MiB": b"POST /echo/a HTTP/1.1\r\n" + H + b"Content-Length: 1048577\r\n\r\n",
        "http-1.2": b"GET /echo/v HTTP/1.2\r\n" + H + b"Connection: close\r\n\r\n",
        "expect-oversized": b"POST /echo/e HTTP/1.1\r\n" + H + b"Content-Length: 2000000\r\n"
        b"Expect: 100-continue\r\n\r\n",
        "forwarding-fields": b"GET /echo/h HTTP/1.1\r\n" + H + b"X-Forwarded-For: 6.6.6.6\r\n"
        b"Forwarded: for=6.6.6.6\r\nX-Secret: s\r\nConnection: X-Secret\r\n\r\n",
    }
    tricks = [b"/echo/%2e%2e/admin/x", b"/echo/a/../b", b"/echo//b", b"/echo/%00x"]
    tricks += [b"/echo/%0d%0aX-Injected:%201", b"/echo/a%2fb", b"/echo\\..\\admin"]
    for target in tricks:
        inline[f"path {target.decode()}"] = b"GET " + target + b" HTTP/1.1\r\n" + H + b"\r\n"
    out += [Case(f"cat-a {name}", (raw,)) for name, raw in inline.items()]
    expect = b"POST /echo/e HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nExpect: 100-continue\r\n"
    out.append(Case("cat-a expect-100", (expect + b"Connection: close\r\n\r\n", b"hello")))
    chunk = b"%x\r\n" % 65536 + b"z" * 65536 + b"\r\n"
    big = b"POST /echo/big HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
    out.append(Case("cat-a chunked-over-1MiB", (big, *[chunk] * 17)))
    return out


BROWSER = (
    b"GET %s HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
    b"Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-GB,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\nCookie: a=1; b=2\r\n"
    b'Upgrade-Insecure-Requests: 1\r\nCache-Control: max-age=0\r\nIf-None-Match: "abc"\r\n\r\n'
)
SPECIAL = b' \t\r\n\x00\x7f\x80:,"%'
VARIANTS = [
    b"Connection: close",
    b"Connection: keep-alive",
    b"connection: Keep-Alive, close",
    b"Connection: upgrade",
    b"Connection: x-foo",
    b"Connection:",
    b"Transfer-Encoding: chunked",
    b"transfer-encoding: identity",
    b"Transfer-Encoding: gzip, chunked",
    b"Expect: 100-continue",
    b"Expect: nope",
    b"Content-Length: 0",
    b"Content-Length: 5",
    b"content-length: 005",
    b"Content-Length: 5, 5",
    b"Content-Length: +5",
    b"Content-Length: 70000",
    b"Content-Length: 99999999999999999999",
    b"Host: other.example",
    b"Upgrade: websocket",
    b"Keep-Alive: timeout=5",
    b"TE: trailers",
    b"X-Forwarded-For: 6.6.6.6",
    b"Close: yes",
]


def _bases(target: bytes) -> dict[str, bytes]:
    get = b"GET %s HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n" % target
    post = b"POST " + target + b" HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n"
    post += b"Content-Length: 5\r\n\r\nhello"
    return {
        "get": get,
        "post": post,
        "http10": b"GET %s HTTP/1.0\r\nHost: a.example\r\nConnection: keep-alive\r\n\r\n" % target,
        "browser": BROWSER % target,
        "pipelined": get + post,
    }


def _mutate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """One random change, mostly inside the first head; and its name."""
    end = data.find(b"\r\n\r\n")
    span = end + 4 if end >= 0 else len(data)
    op = rng.choice(["flip", "insert", "delete", "dup", "drop", "case", "field", "field"])
    pos = rng.randrange(span)
    if op == "flip":
        return data[:pos] + bytes([rng.choice(SPECIAL)]) + data[pos + 1 :], f"flip@{pos}"
    if op == "insert":
        return data[:pos] + bytes([rng.choice(SPECIAL)]) + data[pos:], f"insert@{pos}"
    if op == "delete":
        return data[:pos] + data[pos + 1 :], f"delete@{pos}"
    lines = data[: max(end, 0)].split(b"\r\n")
    rest = data[max(end, 0) :]
    i = rng.randrange(1, len(lines)) if len(lines) > 1 else 0
    if op == "dup":
        lines.insert(i, lines[i])
    elif op == "drop":
        del lines[rng.randrange(len(lines))]
    elif op == "case":
        name, colon, value = lines[i].partition(b":")
        lines[i] = rng.choice([name.upper(), name.lower(), name.swapcase()]) + colon + value
    else:
        lines.insert(i, rng.choice(VARIANTS))
    return b"\r\n".join(lines) + rest, f"{op}@line{i}"


def _fuzz_cases(seed: int, count: int) -> list[Case]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        shape = rng.choice(SHAPES)
        target = f"/fz/{n % 7}" + (f"?r={shape}" if shape else "")
        kind, data = rng.choice(sorted(_bases(target.encode()).items()))
        ops = []
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            data, op = _mutate(rng, data)
            ops.append(op)
        if rng.random() < 0.1:
            cut = rng.randrange(1, len(data))
            data = data[:cut]
            ops.append(f"truncate@{cut}")
        chunks: tuple[bytes, ...] = (data,)
        if rng.random() < 0.3 and len(data) > 1:
            cut = rng.randrange(1, len(data))
            chunks = (data[:cut], data[cut:])
            ops.append(f"split@{cut}")
        half = rng.random() < 0.1
        out.append(Case(f"fuzz#{n} {kind} r={shape} {' '.join(ops)}", chunks, half))
    return out


def _exchange(port: int, case: Case, quiet: float = QUIET_S, cap: float = CAP_S) -> Outcome:
    """Send ``case``; read until the listener closes, ``quiet`` s pass with nothing, or ``cap``."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        for i, chunk in enumerate(case.chunks):
            if i:
                time.sleep(PAUSE_S)
            try:
                sock.sendall(chunk)
            except OSError:
                break  # the listener answered and closed already
        if case.half_close:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        sock.settimeout(quiet)
        got = b""
        deadline = time.monotonic() + cap
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                return _normal(got, port), True
            if not data:
                return _normal(got, port), True
            got += data
        return _normal(got, port), False


def _normal(got: bytes, port: int) -> bytes:
    """The listener's own address (a forwarded Host when the request had none) without its port,
    which differs between the three listeners."""
    return got.replace(b"127.0.0.1:%d" % port, b"127.0.0.1:PORT")


def _show(data: bytes, limit: int) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[:limit] + f"... ({len(data)} bytes)"


def _report(case: Case, outcomes: dict[str, Outcome]) -> str:
    """The input and each mode's output, one under the other, then around the first difference."""
    sent = b"".join(case.chunks)
    lines = [
        f"input {case.name!r} ({len(case.chunks)} chunk(s){', then EOF' if case.half_close else ''})"
        f": {_show(sent, 400)}"
    ]
    outputs = [got for got, _ in outcomes.values()]
    first = next(
        (i for i in range(max(map(len, outputs))) if len({o[i : i + 1] for o in outputs}) > 1),
        None,
    )
    for mode, (got, closed) in outcomes.items():
        lines.append(f"  {mode:>8}: closed={closed!s:<5} {len(got):>6} B  {_show(got, 500)}")
    if first is not None:
        lines.append(f"  first difference at byte {first}:")
        start = max(0, first - 60)
        for mode, (got, _) in outcomes.items():
            lines.append(f"  {mode:>8}: [{start}:] {_show(got[start : first + 200], 400)}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def listeners() -> Iterator[dict[str, Site]]:
    """One controller per available mode, each routing everything to the raw echo."""
    modes = {m: env for m, env in MODES.items() if m != "compiled" or not compiled_core_missing()}
    make = functools.partial(catch_all_manifest, workers=RAWECHO_POOL)
    with contextlib.ExitStack() as stack:
        sites = {}
        for mode, env in modes.items():
            sites[mode] = stack.enter_context(contextlib.contextmanager(_site)(make, env))
        yield sites


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    found = _corpus_cases() + _catalogue_cases() + _fuzz_cases(SEED, FUZZ_CASES)
    assert len({c.name for c in found}) == len(found)
    return found


@pytest.fixture(scope="module")
def outcomes(listeners: dict[str, Site], cases: list[Case]) -> dict[str, dict[str, Outcome]]:
    """Every case's outcome in every mode (by case name, then mode), concurrently."""
    jobs = [(case, mode, site.port) for case in cases for mode, site in listeners.items()]
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda job: _exchange(job[2], job[0]), jobs))
    found: dict[str, dict[str, Outcome]] = {}
    for (case, mode, _), outcome in zip(jobs, results, strict=True):
        found.setdefault(case.name, {})[mode] = outcome
    return found


def test_every_input_gets_the_same_bytes_from_the_three_modes(
    listeners: dict[str, Site], cases: list[Case], outcomes: dict[str, dict[str, Outcome]]
) -> None:
    """Same bytes and same close in every mode, for every input."""
    differing = [c for c in cases if len(set(outcomes[c.name].values())) > 1]
    # Under load a response can miss the 0.4 s quiet window. Before failing, each differing input
    # is sent again to each mode in turn, with 1.5 s of quiet: only a difference that persists is
    # a difference (this absorbs CI timing noise, never a real divergence).
    failures = []
    for case in differing[:MAX_RERUNS]:
        again = {
            m: _exchange(s.port, case, RERUN_QUIET_S, RERUN_CAP_S) for m, s in listeners.items()
        }
        if len(set(again.values())) > 1:
            failures.append(_report(case, again))
    failures += [_report(c, outcomes[c.name]) + "\n  (not re-run)" for c in differing[MAX_RERUNS:]]
    assert not failures, (
        f"{len(failures)} of {len(cases)} inputs differ between modes (seed {SEED}, "
        f"ORCH_TWINS_SEED replays another):\n" + "\n".join(failures)
    )


def test_the_inputs_reach_the_worker_and_the_common_exchange_is_served(
    listeners: dict[str, Site], outcomes: dict[str, dict[str, Outcome]]
) -> None:
    """Not vacuous: many inputs are forwarded to the echo, and many get a 200 from it."""
    mode = next(iter(listeners))
    got = [outcomes[name][mode][0] for name in outcomes]
    reached = sum(FORWARDED in g for g in got)
    served = sum(g.startswith(b"HTTP/1.1 200 OK\r\n") and FORWARDED in g for g in got)
    # About 200 of each with the default seed: the floor leaves room for another seed.
    assert reached >= 150, reached
    assert served >= 150, served


def _keep_alive_transcript(port: int, count: int) -> tuple[bytes, list[int]]:
    """``count`` identical GETs one after the other on one connection: every byte received."""
    request = b"GET /ka?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"
    received = b""
    codes: list[int] = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        buf = b""

        def more() -> bytes:
            data = sock.recv(65536)
            assert data, f"closed after {len(codes)} responses: {_show(received + buf, 600)}"
            return data

        for _ in range(count):
            sock.sendall(request)
            while b"\r\n\r\n" not in buf:
                buf += more()
            head, _, buf = buf.partition(b"\r\n\r\n")
            found = re.search(rb"\r\ncontent-length: (\d+)", head, re.IGNORECASE)
            length = int(found.group(1)) if found else 0
            while len(buf) < length:
                buf += more()
            received += head + b"\r\n\r\n" + buf[:length]
            codes.append(int(head[9:12]))
            buf = buf[length:]
    return received, codes


def test_a_keep_alive_sequence_gets_the_same_bytes_from_the_three_modes(
    listeners: dict[str, Site],
) -> None:
    """50 identical GETs on one connection: 50 responses of 200, the same bytes in every mode."""
    transcripts = {m: _keep_alive_transcript(s.port, 50) for m, s in listeners.items()}
    for received, codes in transcripts.values():
        assert [200] * 50 == codes, received[-300:]
    assert 1 == len({received for received, _ in transcripts.values()}), {
        m: _show(r, 600) for m, (r, _) in transcripts.items()
    }


@pytest.mark.parametrize("mode", ["compiled", "python"])
def test_each_listener_runs_the_core_its_mode_names(listeners: dict[str, Site], mode: str) -> None:
    """The listener logs the core it chose: compiled by default, the twin when told so."""
    if mode == "compiled" and (why := compiled_core_missing()):
        pytest.skip(why)
    ctl = listeners[mode].ctl
    wait_until(lambda: ctl.events("listener_core"), 5, "the listener to log its core")
    events = ctl.events("listener_core")
    assert [mode] == [e.get("implementation") for e in events][:1], events


def test_no_listener_logs_a_fast_path_mismatch(
    listeners: dict[str, Site], outcomes: dict[str, dict[str, Outcome]]
) -> None:
    """``materialise`` never finds a request the fast path took that the general path refuses."""
    time.sleep(1.5)  # the listener flushes its log about once a second
    for mode, site in listeners.items():
        assert [] == site.ctl.events("listener_fast_path_mismatch"), mode
