"""The only module that touches `httptools` (llhttp): it tokenises complete message heads in C.

Owns: feeding ONE complete head (start line, fields, empty line) to an llhttp parser in strict mode and
collecting its fields. llhttp checks the byte-level grammar (tokens, CTLs, obs-fold, bare CR/LF,
whitespace before the colon, CL/TE syntax) far faster than Python can; our own policy runs on what it
returns. Bodies never go through llhttp: framing is ours (`readers.py`), so we always know where a
message ends, which llhttp through httptools cannot tell us.

A parser is reused while llhttp finished the message inside the head (no body announced); otherwise a new
one is made for the next head, because httptools cannot reset llhttp.

Must not import: anything from `orchestrator`, nor other modules of this package (it is the FFI seam).
No sockets, no asyncio, no time.
"""

from __future__ import annotations

import enum
from typing import Final

import httptools

_OWS: Final = b" \t"


class Rejection(enum.Enum):
    """Which part of the head llhttp refused, as far as httptools tells us."""

    METHOD = "method"
    URL = "url"
    STATUS = "status"
    OTHER = "other"


class HeadRejected(Exception):
    """llhttp refused the head. `kind` and `detail` (llhttp's reason) are hints for the slow path."""

    def __init__(self, kind: Rejection, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class _Collector:
    """httptools protocol object: collects fields as (lower-cased name, value without OWS)."""

    __slots__ = ("complete", "fields", "message_complete", "special", "specials")

    def __init__(self, special: frozenset[bytes]) -> None:
        self.special = special
        self.fields: list[tuple[bytes, bytes]] = []
        self.specials: list[tuple[bytes, bytes]] = []
        self.complete = False
        self.message_complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        # llhttp strips leading OWS but keeps trailing OWS; RFC 9112 §5 excludes both from the value.
        field = (name.lower(), value.rstrip(_OWS))
        self.fields.append(field)
        if field[0] in self.special:
            self.specials.append(field)

    def on_headers_complete(self) -> None:
        self.complete = True

    def on_message_complete(self) -> None:
        self.message_complete = True


class HeadTokenizer:
    """Feeds complete heads to llhttp and returns their fields.

    Args:
        response: parse status lines (worker responses) instead of request lines.
        special: lower-cased field names to collect separately for the policy checks.
    """

    __slots__ = ("_collector", "_parser", "_response")

    def __init__(self, *, response: bool, special: frozenset[bytes]) -> None:
        self._response = response
        self._collector = _Collector(special)
        self._parser: httptools.HttpRequestParser | httptools.HttpResponseParser | None = None

    def tokenize(self, head: bytes) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
        """Run llhttp over one complete head.

        Returns:
            (all fields, special fields), both as (lower-cased name, value) in arrival order.

        Raises:
            HeadRejected: llhttp refused the head.
        """
        collector = self._collector
        collector.fields = []
        collector.specials = []
        collector.complete = False
        collector.message_complete = False
        parser = self._parser
        if parser is None:
            if self._response:
                parser = httptools.HttpResponseParser(collector)
            else:
                parser = httptools.HttpRequestParser(collector)
        self._parser = None
        try:
            parser.feed_data(head)
        except httptools.HttpParserUpgrade:
            # Upgrade or CONNECT: llhttp stops after the head. The head itself is fine; the policy
            # decides what follows. The parser is not reused.
            pass
        except httptools.HttpParserInvalidMethodError as exc:
            raise HeadRejected(Rejection.METHOD, str(exc)) from None
        except httptools.HttpParserInvalidURLError as exc:
            raise HeadRejected(Rejection.URL, str(exc)) from None
        except httptools.HttpParserInvalidStatusError as exc:
            raise HeadRejected(Rejection.STATUS, str(exc)) from None
        except httptools.HttpParserError as exc:
            detail = str(exc)
            # A 101 response (or a request llhttp treats as an upgrade) stops llhttp with a "Pause on
            # CONNECT/Upgrade" error once the head is complete; the head itself was fine.
            if not (collector.complete and detail.startswith("Pause on")):
                raise HeadRejected(Rejection.OTHER, detail) from None
        else:
            if collector.message_complete and parser.should_keep_alive():
                # llhttp is back at the start of a message: safe to feed it the next head.
                self._parser = parser
        if not collector.complete:
            raise HeadRejected(Rejection.OTHER, "llhttp did not reach the end of the head")
        return collector.fields, collector.specials
