"""The llhttp request corpus (tests/data/http/llhttp-requests.json, MIT, see LICENSE-llhttp.txt).

Rules from /work/shared/data/README.md, applied at the parser level:
- `reject`: a RemoteProtocolError with a 4xx, 501 or 505 hint, before any EndOfMessage. When the input
  leaves the parser waiting (an unterminated head, `then_eof`), the client half-closes: we feed EOF.
- `accept`: no 5xx for the first message. A 4xx is allowed only for `missing_host` (400, Hostname: RFC
  9112 §3.2 makes it mandatory) or `strict_proxy_may_reject` (also 501/505). At most `messages` requests
  complete. After an upgrade or a `trailing_error`, the bytes that follow never come out as a request.
- every `missing_host` accept case is replayed with a Host field added, to exercise the accept path.
"""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.http1 import (
    PAUSED,
    ConnectionClosed,
    Reason,
    RemoteProtocolError,
    Request,
    RequestParser,
    State,
)

from ._support import Outcome, drain, feed, load_corpus, raw

CORPUS = load_corpus()
CASES = CORPUS["cases"]
REJECT = [pytest.param(c, id=c["id"]) for c in CASES if c["expect"] == "reject"]
ACCEPT = [pytest.param(c, id=c["id"]) for c in CASES if c["expect"] == "accept"]
MISSING_HOST = [pytest.param(c, id=c["id"]) for c in CASES if c["missing_host"]]


def _allowed_refusal(status: int) -> bool:
    return 400 <= status < 500 or status in (501, 505)


def with_host(data: bytes) -> bytes:
    """Add a Host field to every HTTP/1.1 request line in `data`."""
    return data.replace(b" HTTP/1.1\r\n", b" HTTP/1.1\r\nHost: example.com\r\n")


def run(case: dict[str, Any], data: bytes) -> tuple[Outcome, RequestParser]:
    """Send `data` in one read; EOF when the case says so (then_eof)."""
    parser = RequestParser()
    outcome = feed([data], eof=bool(case["then_eof"]), parser=parser)
    return outcome, parser


def test_corpus_has_the_documented_shape() -> None:
    """The copied fixture is the 136-case corpus the README describes, with its MIT notice."""
    assert (136, 82, 54) == (
        len(CASES),
        len(ACCEPT),
        len(REJECT),
    )
    assert "MIT" == CORPUS["license"]["spdx"]


@pytest.mark.parametrize("case", REJECT)
def test_reject_case_is_refused_before_any_message_completes(case: dict[str, Any]) -> None:
    """A `reject` vector raises RemoteProtocolError (4xx/501/505) before any EndOfMessage."""
    data = raw(case)
    parser = RequestParser()
    outcome = feed([data], eof=bool(case["then_eof"]), parser=parser)
    if outcome.error is None:
        # Still waiting (unterminated head, or a body that never ends): the client half-closes.
        assert outcome.last is not PAUSED, "a reject case must not leave the parser paused"
        parser.receive_data(b"")
        drain(parser, outcome)
    assert isinstance(outcome.error, RemoteProtocolError), case["error"]
    assert _allowed_refusal(outcome.error.error_status_hint), outcome.error
    assert 0 == outcome.ends


@pytest.mark.parametrize("case", ACCEPT)
def test_accept_case_gets_no_5xx_and_at_most_its_messages(case: dict[str, Any]) -> None:
    """An `accept` vector is served, or refused only where the README allows a strict proxy to."""
    outcome, parser = run(case, raw(case))
    error = outcome.error
    if error is not None and outcome.ends == 0:
        # The refusal answers the first request.
        if case["missing_host"] and (400, Reason.HOSTNAME) == (
            error.error_status_hint,
            error.reason,
        ):
            return
        assert case["strict_proxy_may_reject"], f"refused: {error!r}"
        assert _allowed_refusal(error.error_status_hint), error
        return
    assert outcome.ends <= case["messages"]
    if error is not None:
        # Only the bytes after the served messages may be refused, and only with a 4xx.
        assert case["trailing_error"] or case["upgrade"], error
        assert 400 <= error.error_status_hint < 500
    if case["upgrade"] or case["trailing_error"]:
        _assert_nothing_parsed_after_the_last_message(outcome, parser, case)


def _assert_nothing_parsed_after_the_last_message(
    outcome: Outcome, parser: RequestParser, case: dict[str, Any]
) -> None:
    if outcome.error is not None:
        return
    assert case["messages"] == len(outcome.requests)
    assert parser.state in (State.SWITCHED, State.MUST_CLOSE)
    assert outcome.last is PAUSED or isinstance(outcome.last, ConnectionClosed)


@pytest.mark.parametrize("case", MISSING_HOST)
def test_missing_host_case_with_a_host_added_is_accepted(case: dict[str, Any]) -> None:
    """Adding Host turns each missing-Host vector into a served request (unless strictly refused)."""
    outcome, _ = run(case, with_host(raw(case)))
    if outcome.error is not None:
        assert case["strict_proxy_may_reject"], f"refused: {outcome.error!r}"
        assert _allowed_refusal(outcome.error.error_status_hint)
        return
    assert case["messages"] == outcome.ends
    requests = [e for e in outcome.events if isinstance(e, Request)]
    pending = 1 if case["ends_mid_message"] else 0
    assert case["messages"] <= len(requests) <= case["messages"] + pending
    # Host, unless an absolute-form target names the authority (RFC 9112 §3.2.2).
    assert all(
        r.host
        == (b"example.com" if r.target.startswith(b"/") else r.target.split(b"/")[2].split(b"?")[0])
        for r in requests
    )
