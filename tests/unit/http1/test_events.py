"""Events validate on construction, so an event that exists is valid (h11's rule)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from orchestrator.http1 import Data, EndOfMessage, Framing, LocalProtocolError, Request, Response
from orchestrator.http1.events import trusted_request, trusted_response

GOOD_REQUEST = {"method": b"GET", "target": b"/", "headers": ((b"host", b"a"),), "host": b"a"}


def test_valid_request_constructs() -> None:
    """The defaults plus a method and a target make a valid request."""
    request = Request(**GOOD_REQUEST)  # type: ignore[arg-type]
    assert request.keep_alive
    assert not request.has_body


@pytest.mark.parametrize(
    "change",
    [
        {"method": b"G T"},
        {"method": "GET"},
        {"target": b""},
        {"target": b"/a b"},
        {"http_version": b"2.0"},
        {"headers": [(b"host", b"a")]},
        {"headers": ((b"Host", b"a"),)},
        {"headers": ((b"x", b"a\r\nb"),)},
        {"headers": ((b"x", b" padded"),)},
        {"headers": ((b"x y", b"v"),)},
        {"content_length": -1},
        {"content_length": True},
        {"content_length": 5, "chunked": True},
        {"connection": (b"Close",)},
        {"host": b"a b"},
        {"upgrade": b"ws\x00"},
        {"http_version": b"1.0", "chunked": True},
    ],
)
def test_invalid_request_is_refused_at_construction(change: dict[str, object]) -> None:
    """Each invalid field value raises LocalProtocolError."""
    with pytest.raises(LocalProtocolError):
        Request(**{**GOOD_REQUEST, **change})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status_code": 99},
        {"status_code": 1000},
        {"status_code": 200, "reason": b"O\nK"},
        {"status_code": 200, "framing": Framing.CHUNKED},
        {"status_code": 200, "framing": Framing.LENGTH},
        {"status_code": 200, "framing": Framing.CLOSE},
        {"status_code": 200, "framing": "close"},
    ],
)
def test_invalid_response_is_refused_at_construction(kwargs: dict[str, object]) -> None:
    """Status range, reason phrase and framing consistency are checked."""
    with pytest.raises(LocalProtocolError):
        Response(**kwargs)  # type: ignore[arg-type]


def test_events_are_frozen() -> None:
    """Events cannot be changed after construction."""
    request = Request(**GOOD_REQUEST)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.method = b"POST"  # type: ignore[misc]


def test_data_and_trailers_are_checked() -> None:
    """Data holds bytes; trailers are valid fields."""
    with pytest.raises(LocalProtocolError):
        Data("text")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        EndOfMessage(((b"X", b"v"),))


@pytest.mark.parametrize(
    ("cls", "factory"), [(Request, trusted_request), (Response, trusted_response)]
)
def test_trusted_factory_arguments_follow_the_field_order(cls: type, factory: object) -> None:
    """The parsers' no-validation factories must track the dataclass fields exactly."""
    assert [f.name for f in dataclasses.fields(cls)] == list(inspect.signature(factory).parameters)  # type: ignore[arg-type]


def test_trusted_request_equals_a_validated_one() -> None:
    """The factory builds the same value as the validating constructor."""
    fields = {f.name: getattr(Request(**GOOD_REQUEST), f.name) for f in dataclasses.fields(Request)}  # type: ignore[arg-type]
    assert Request(**GOOD_REQUEST) == trusted_request(**fields)  # type: ignore[arg-type]
