"""The only module that touches `httptools` (llhttp): it tokenises complete message heads in C.

Owns: feeding ONE complete head (start line, fields, empty line) to an llhttp parser in strict mode and
collecting its fields. llhttp checks the byte-level grammar (tokens, CTLs, obs-fold, bare CR/LF,
whitespace before the colon, CL/TE syntax) far faster than Python can; our own policy runs on what it
returns. Bodies never go through llhttp: framing is ours (`readers.py`), so we always know where a
message ends, which llhttp through httptools cannot tell us.

A parser is reused while llhttp finished the message inside the head (no body announced); otherwise a new
one is made for the next head, because httptools cannot reset llhttp. Parsers belong to the process's
tokenizers, not to connections (`shared_tokenizer`).

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

    __slots__ = (
        "complete",
        "fields",
        "keep_alive",
        "message_complete",
        "parser",
        "special",
        "specials",
    )

    def __init__(self, special: frozenset[bytes]) -> None:
        self.special = special
        self.parser: httptools.HttpRequestParser | httptools.HttpResponseParser | None = None
        self.keep_alive = False
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
        # Asked here, not after the message: llhttp clears its flags when a message completes, so
        # should_keep_alive() then answers True even for `Connection: close` or HTTP/1.0, and a
        # parser in its closed state would be reused (it refuses the next head).
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()

    def on_message_complete(self) -> None:
        self.message_complete = True


class HeadTokenizer:
    """Feeds complete heads to llhttp and returns their fields.

    One per direction is enough for a whole process (`shared_tokenizer`): each call takes a parser
    from a small free list and puts it back when llhttp is at the start of a message again, so an idle
    connection carries no llhttp parser (about 1 KiB each), and threads (the worker runner parses on
    several) never share a parser, because ``list.pop`` and ``list.append`` are atomic.

    Args:
        response: parse status lines (worker responses) instead of request lines.
        special: lower-cased field names to collect separately for the policy checks.
    """

    __slots__ = ("_free", "_response", "_special")

    # Parsers kept for reuse; more are only needed while that many threads parse at the same time.
    FREE_MAX = 8

    def __init__(self, *, response: bool, special: frozenset[bytes]) -> None:
        self._response = response
        self._special = special
        self._free: list[
            tuple[httptools.HttpRequestParser | httptools.HttpResponseParser, _Collector]
        ]
        self._free = []

    def tokenize(self, head: bytes) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
        """Run llhttp over one complete head.

        Returns:
            (all fields, special fields), both as (lower-cased name, value) in arrival order.

        Raises:
            HeadRejected: llhttp refused the head.
        """
        try:
            parser, collector = self._free.pop()
        except IndexError:
            collector = _Collector(self._special)
            if self._response:
                parser = httptools.HttpResponseParser(collector)
            else:
                parser = httptools.HttpRequestParser(collector)
            collector.parser = parser
        fields: list[tuple[bytes, bytes]] = []
        specials: list[tuple[bytes, bytes]] = []
        collector.fields = fields
        collector.specials = specials
        collector.complete = False
        collector.message_complete = False
        collector.keep_alive = False
        pooled = False
        try:
            self._feed(parser, collector, head)
            if collector.message_complete and collector.keep_alive:
                # llhttp is back at the start of a message: safe to feed it the next head. The
                # collector lets go of this head's lists so the free list holds nothing of it.
                collector.fields = collector.specials = _NONE
                if len(self._free) < self.FREE_MAX:
                    self._free.append((parser, collector))
                    pooled = True
        finally:
            if not pooled:
                # The parser holds the collector's callbacks and the collector the parser: break
                # the cycle so the pair goes now, not at the next garbage collection.
                collector.parser = None
        return fields, specials

    @staticmethod
    def _feed(
        parser: httptools.HttpRequestParser | httptools.HttpResponseParser,
        collector: _Collector,
        head: bytes,
    ) -> None:
        """Feed one head; translate llhttp's refusals into ``HeadRejected``."""
        try:
            parser.feed_data(head)
        except httptools.HttpParserUpgrade:
            # Upgrade or CONNECT: llhttp stops after the head. The head itself is fine; the policy
            # decides what follows. The parser is paused there: never reused.
            collector.message_complete = False
        except httptools.HttpParserInvalidMethodError as exc:
            raise HeadRejected(Rejection.METHOD, str(exc)) from None
        except httptools.HttpParserInvalidURLError as exc:
            raise HeadRejected(Rejection.URL, str(exc)) from None
        except httptools.HttpParserInvalidStatusError as exc:
            raise HeadRejected(Rejection.STATUS, str(exc)) from None
        except httptools.HttpParserError as exc:
            detail = str(exc)
            # A 101 response (or a request llhttp treats as an upgrade) stops llhttp with a "Pause on
            # CONNECT/Upgrade" error once the head is complete; the head itself was fine. It is not
            # reused either.
            if not (collector.complete and detail.startswith("Pause on")):
                raise HeadRejected(Rejection.OTHER, detail) from None
            collector.message_complete = False
        if not collector.complete:
            raise HeadRejected(Rejection.OTHER, "llhttp did not reach the end of the head")


_NONE: list[tuple[bytes, bytes]] = []  # never appended to: a collector between heads points here
_SHARED: dict[tuple[bool, frozenset[bytes]], HeadTokenizer] = {}


def shared_tokenizer(*, response: bool, special: frozenset[bytes]) -> HeadTokenizer:
    """The process's tokenizer for one direction and set of special fields, made on first use."""
    tokenizer = _SHARED.get((response, special))
    if tokenizer is None:
        tokenizer = _SHARED.setdefault(
            (response, special), HeadTokenizer(response=response, special=special)
        )
    return tokenizer
