"""Protocol errors raised by the sans-I/O HTTP/1.1 core.

Owns: the error classes and the `Reason` taxonomy (http.sys "Types of errors logged by the HTTP Server
API" names, notes/http-front-end.md §2.1), so the listener can log and answer without re-deriving why a
message failed.

Must not import: anything from `orchestrator` (http1 is extractable, h11-style), nor any other module of
this package; everything else in `http1` imports this one.
"""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    """Why a message was refused, in http.sys's spelling (notes/http-front-end.md §2.1).

    The value is what the listener writes to its error log and what tests assert on. `URL`, `Verb` and
    `Number` are further names from the same Microsoft list.
    """

    BAD_REQUEST = (
        "BadRequest"  # malformed request line, CL+TE, duplicate CL, broken chunk framing, EOF
    )
    HEADER = "Header"  # bad field name or value, whitespace before the colon, obs-fold
    HOSTNAME = "Hostname"  # Host missing, repeated or not host[:port]
    INVALID_CR_LF = "Invalid_CR/LF"  # bare CR or bare LF anywhere in the framing
    FIELD_LENGTH = "FieldLength"  # one field line over the per-field limit
    REQUEST_LENGTH = "RequestLength"  # the whole head over its limit, or too many fields
    URL = "URL"  # request-target not acceptable (fragment, userinfo, wrong form)
    URL_LENGTH = "URL_Length"  # request line over its limit
    VERB = "Verb"  # method is not a token
    NUMBER = "Number"  # Content-Length or chunk size is not a plain decimal / hex number
    VERSION_NS = "Version_N/S"  # HTTP version not supported (HTTP/2.0, the PRI preface, 0.x, 2+)
    ENTITY_TOO_LARGE = "EntityTooLarge"  # body over the limit
    LENGTH_REQUIRED = "LengthRequired"  # a body without a usable length
    NOT_IMPLEMENTED = "N/I"  # unknown transfer coding, CONNECT, a method llhttp does not know


class ProtocolError(Exception):
    """Base class: a message could not be parsed or produced.

    Attributes:
        msg: a human-readable explanation (for the log, never sent verbatim to a client).
        error_status_hint: the status code to answer with (h11's name for it).
        reason: the http.sys taxonomy name, for logs and tests.
    """

    def __init__(
        self, msg: str, error_status_hint: int = 400, reason: Reason = Reason.BAD_REQUEST
    ) -> None:
        super().__init__(msg)
        self.msg = msg
        self.error_status_hint = error_status_hint
        self.reason = reason

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.msg!r}, error_status_hint={self.error_status_hint}, "
            f"reason={self.reason.value!r})"
        )

    def copy(self) -> ProtocolError:
        """Return a fresh exception with the same message, status hint and reason.

        A parser in the sticky ERROR state raises a copy on every call, so tracebacks do not pile up on
        one exception object.
        """
        return type(self)(self.msg, self.error_status_hint, self.reason)


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol. Answer with `error_status_hint` (if still possible) and close."""


class LocalProtocolError(ProtocolError):
    """We misused the API (a bug in the caller): bad event values, data after EOF, an illegal transition."""

    def __init__(
        self, msg: str, error_status_hint: int = 500, reason: Reason = Reason.BAD_REQUEST
    ) -> None:
        super().__init__(msg, error_status_hint, reason)
