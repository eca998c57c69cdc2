"""The strictness policy of notes/http-front-end.md §1 and §4, in one place.

Owns:
- `Limits` and `HeadScanner`: byte-counted head limits (request line 414, one field or the whole head 431,
  field count 431) and bare CR / bare LF detection, decided by *position* so the verdict is the same
  however the bytes were split into reads (the earliest offending byte wins).
- request-line and status-line syntax (version policy: 1.2-1.9 served as 1.1, other majors 505),
  request-target forms, Host syntax;
- field-line syntax for the slow path and for trailers (`parse_field_lines`);
- framing semantics (`check_request_fields`, `check_response_fields`): CL+TE, duplicate CL, CL syntax and
  overflow, Transfer-Encoding codings, TE in HTTP/1.0, Host presence, Connection tokens, Expect, Upgrade;
- chunk-size line syntax.

Everything here is a pure function of bytes already framed by the caller; nothing here buffers.

Must not import: anything from `orchestrator`; from this package only `errors` and `_abnf`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final, TypeAlias

from orchestrator.http1._abnf import (
    DIGITS,
    OWS,
    VCHAR,
    is_digits,
    is_field_value,
    is_hex,
    is_token,
    is_vchar,
)
from orchestrator.http1.errors import Reason, RemoteProtocolError

CR: Final = 0x0D
LF: Final = 0x0A

# Largest Content-Length accepted as a number at all; above it the value is an overflow (400), below it
# an over-limit body (413). 2**63 - 1 matches what signed 64-bit peers can represent.
MAX_CONTENT_LENGTH: Final = 2**63 - 1
MAX_CHUNK_SIZE_DIGITS: Final = 16

# Fields the semantic checks look at; the parsers collect only these on the hot path.
SPECIAL_REQUEST_FIELDS: Final = frozenset(
    {b"host", b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade"}
)
SPECIAL_RESPONSE_FIELDS: Final = frozenset({b"content-length", b"transfer-encoding", b"connection"})

# host[:port] with a conservative reg-name (no sub-delims, no percent-encoding) or an IPv6 literal.
_HOST = re.compile(rb"(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?")
_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
# RFC 9112 §7.1.1 chunk-ext, without BWS: whitespace around ';' and '=' is refused (llhttp does too).
_CHUNK_EXT = re.compile(rb"(?:;" + _TCHAR + rb"+(?:=(?:" + _TCHAR + rb"+|" + _QUOTED + rb"))?)*")


def _error(msg: str, status: int, reason: Reason) -> RemoteProtocolError:
    return RemoteProtocolError(msg, status, reason)


# --------------------------------------------------------------------------------------------------
# Limits and positional scanning


@dataclass(frozen=True, slots=True)
class Limits:
    """Byte and count limits for one message head (or trailer section).

    Attributes:
        first_line_bytes: request line / status line, without its CRLF (414 for requests).
        field_bytes: one field line, without its CRLF (431 FieldLength).
        head_bytes: the whole head including every CRLF and the final empty line (431 RequestLength).
        fields: number of field lines (431 RequestLength).
    """

    first_line_bytes: int
    field_bytes: int
    head_bytes: int
    fields: int

    def __post_init__(self) -> None:
        for name in ("first_line_bytes", "field_bytes", "head_bytes", "fields"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


# Error kinds in tie-break order: when two become certain at the same byte, the first listed wins.
_BARE_CR_LF, _LINE_TOO_LONG, _HEAD_TOO_LONG, _TOO_MANY_FIELDS = range(4)


class HeadScanner:
    """Finds the earliest limit or bare CR/LF violation in a head that may still be arriving.

    Each violation becomes certain at one byte offset (a bare LF at its own offset, a bare CR at the byte
    after it, a too-long line at the byte that takes it over the limit, ...). `scan` reports the violation
    with the smallest such offset among the bytes available, so feeding a head in one piece or byte by
    byte gives the same error. Complete lines are scanned once; `pos` remembers where the first
    unscanned line starts.
    """

    __slots__ = ("_fields", "_limits", "_line", "_partial_to", "_start_line", "pos")

    def __init__(self, limits: Limits, *, start_line: bool = True) -> None:
        self._limits = limits
        self._start_line = start_line
        self.reset()

    def reset(self) -> None:
        """Forget progress: the next scan starts a new head at offset 0."""
        self.pos = 0
        self._line = 0 if self._start_line else 1  # index of the line starting at pos
        self._fields = 0
        self._partial_to = 0  # bytes of the unterminated line at pos already checked for CR and LF

    def scan(self, buf: bytes | bytearray, end: int, *, eof: bool = False) -> bool:
        """Check `buf[:end]` (a head starting at offset 0) for limit and bare CR/LF violations.

        Args:
            buf: the buffer; the head starts at offset 0.
            end: how many bytes of `buf` belong to the head (or are available so far).
            eof: no byte will follow `buf[:end]`, so a trailing CR is bare.

        Returns:
            True when the empty line ending the head was reached within `buf[:end]`.

        Raises:
            RemoteProtocolError: 414, 431 or 400 (Invalid_CR/LF) for the earliest violation.
        """
        limits = self._limits
        head_max = limits.head_bytes
        while True:
            s = self.pos
            i = buf.find(b"\n", max(s, self._partial_to), end)
            if i == -1:
                self._scan_partial(buf, s, end, eof)
                return False
            # The line is buf[s:i+1]. Collect (offset where the violation becomes certain, kind).
            found: list[tuple[int, int]] = []
            crlf = i > s and buf[i - 1] == CR
            if not crlf:
                found.append((i, _BARE_CR_LF))
            j = buf.find(b"\r", s, i - 1 if crlf else i)
            if j != -1:
                found.append((j + 1, _BARE_CR_LF))
            is_empty = crlf and i == s + 1
            if not is_empty or self._line == 0:
                limit = limits.first_line_bytes if self._line == 0 else limits.field_bytes
                if i - s > limit + 1:
                    found.append((s + limit + 1, _LINE_TOO_LONG))
            if i >= head_max:
                found.append((head_max, _HEAD_TOO_LONG))
            if self._line > 0 and not is_empty and self._fields >= limits.fields:
                found.append((s if buf[s] != CR else s + 1, _TOO_MANY_FIELDS))
            if found:
                raise self._violation(min(found)[1])
            self.pos = self._partial_to = i + 1
            if self._line > 0:
                if is_empty:
                    return True
                self._fields += 1
            self._line += 1

    def _scan_partial(self, buf: bytes | bytearray, s: int, end: int, eof: bool) -> None:
        """Check the unterminated line `buf[s:end]` for violations already certain."""
        limits = self._limits
        found: list[tuple[int, int]] = []
        # A CR is bare once the byte after it is known to be no LF, or EOF says there is none.
        cr_stop = end if eof else end - 1
        j = buf.find(b"\r", max(s, self._partial_to), cr_stop)
        if j != -1:
            found.append((j + 1, _BARE_CR_LF))
        limit = limits.first_line_bytes if self._line == 0 else limits.field_bytes
        if s + limit + 1 < end:
            found.append((s + limit + 1, _LINE_TOO_LONG))
        if limits.head_bytes < end:
            found.append((limits.head_bytes, _HEAD_TOO_LONG))
        if self._line > 0 and self._fields >= limits.fields and s < end:
            if buf[s] != CR:
                found.append((s, _TOO_MANY_FIELDS))
            elif s + 1 < end and buf[s + 1] != LF:
                found.append((s + 1, _TOO_MANY_FIELDS))
        if found:
            raise self._violation(min(found)[1])
        self._partial_to = max(s, cr_stop)

    def _violation(self, kind: int) -> RemoteProtocolError:
        limits = self._limits
        if kind == _BARE_CR_LF:
            return _error("bare CR or LF in the message head", 400, Reason.INVALID_CR_LF)
        if kind == _LINE_TOO_LONG and self._line == 0:
            return _error(
                f"start line longer than {limits.first_line_bytes} bytes", 414, Reason.URL_LENGTH
            )
        if kind == _LINE_TOO_LONG:
            return _error(
                f"a field line is longer than {limits.field_bytes} bytes", 431, Reason.FIELD_LENGTH
            )
        if kind == _HEAD_TOO_LONG:
            return _error(
                f"message head longer than {limits.head_bytes} bytes", 431, Reason.REQUEST_LENGTH
            )
        return _error(f"more than {limits.fields} header fields", 431, Reason.REQUEST_LENGTH)


# --------------------------------------------------------------------------------------------------
# Start lines
#
# The hot path returns plain tuples: on this path a frozen dataclass costs more than the checks.

RequestLine: TypeAlias = tuple[bytes, bytes, bytes, bytes, bool]
"""(method, target, http_version b"1.0"/b"1.1", authority of an absolute-form target or b"",
whether HTTP/1.2..1.9 was mapped to 1.1)."""

StatusLine: TypeAlias = tuple[bytes, int, bytes]
"""(http_version, status code, reason phrase)."""

_COMMON_METHODS: Final = frozenset(
    {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE"}
)
# Visible ASCII except "#": one translate() checks an origin-form target completely.
_ORIGIN_FORM_CHARS: Final = VCHAR.replace(b"#", b"")


def parse_version(version: bytes) -> tuple[int, int]:
    """Parse `HTTP/x.y` (RFC 9112 §2.3: case-sensitive name, one digit each).

    Raises:
        RemoteProtocolError: 400 if `version` is not of that form.
    """
    if (
        len(version) != 8
        or not version.startswith(b"HTTP/")
        or version[6] != 0x2E
        or version[5] not in DIGITS
        or version[7] not in DIGITS
    ):
        raise _error(f"malformed HTTP version {version[:16]!r}", 400, Reason.BAD_REQUEST)
    return version[5] - 0x30, version[7] - 0x30


def parse_request_line(line: bytes) -> RequestLine:
    """Check a request line (without CRLF) against the policy.

    Order: version first (so `PRI * HTTP/2.0` and `GET / HTTP/2.0` are 505 whatever else is wrong),
    then method, then target.

    Raises:
        RemoteProtocolError: 505 Version_N/S, 501 N/I (CONNECT), 400 BadRequest / Verb / URL.
    """
    parts = line.split(b" ")
    if len(parts) != 3:
        if len(parts) == 2 and is_token(parts[0]):
            raise _error("request line without an HTTP version (HTTP/0.9)", 400, Reason.BAD_REQUEST)
        raise _error("request line is not 'method SP target SP version'", 400, Reason.BAD_REQUEST)
    method, target, version = parts
    rewritten = False
    if version == b"HTTP/1.1":
        http_version = b"1.1"
    elif version == b"HTTP/1.0":
        http_version = b"1.0"
    else:
        major, minor = parse_version(version)
        if major != 1:
            raise _error(f"HTTP/{major}.{minor} is not supported", 505, Reason.VERSION_NS)
        # RFC 9110 §2.5: a higher minor version is served as the highest we implement.
        http_version = b"1.1"
        rewritten = True
    if method not in _COMMON_METHODS:
        if not is_token(method):
            raise _error(f"method {method[:32]!r} is not a token", 400, Reason.VERB)
        if method == b"CONNECT":
            raise _error("CONNECT is not implemented by this server", 501, Reason.NOT_IMPLEMENTED)
        if method == b"PRI":
            raise _error("PRI is reserved for the HTTP/2 preface", 400, Reason.BAD_REQUEST)
    if target[:1] == b"/" and not target.translate(None, _ORIGIN_FORM_CHARS):
        return method, target, http_version, b"", rewritten  # origin-form: the common case
    return method, target, http_version, check_target(method, target), rewritten


def check_target(method: bytes, target: bytes) -> bytes:
    """Check the request-target form (RFC 9112 §3.2) and return an absolute-form's authority.

    Accepts origin-form, absolute-form with an http(s) scheme and no userinfo, and `*` for OPTIONS.
    Refuses fragments: no request-target form has one.

    Raises:
        RemoteProtocolError: 400 URL.
    """
    if not is_vchar(target):
        raise _error("request-target is empty or not visible ASCII", 400, Reason.URL)
    if b"#" in target:
        raise _error("request-target contains a fragment", 400, Reason.URL)
    if target[:1] == b"/":
        return b""
    if target == b"*":
        if method != b"OPTIONS":
            raise _error("asterisk-form is only allowed with OPTIONS", 400, Reason.URL)
        return b""
    lowered = target[:8].lower()
    if lowered.startswith(b"http://"):
        rest = target[7:]
    elif lowered.startswith(b"https://"):
        rest = target[8:]
    else:
        raise _error("request-target is not origin-, absolute- or asterisk-form", 400, Reason.URL)
    cut = len(rest)
    for sep in (b"/", b"?"):
        k = rest.find(sep)
        if k != -1 and k < cut:
            cut = k
    authority = rest[:cut]
    if b"@" in authority:
        raise _error("userinfo in an absolute-form target", 400, Reason.URL)
    if not is_valid_host(authority):
        raise _error("absolute-form target has an invalid authority", 400, Reason.URL)
    return authority.lower()


@functools.lru_cache(maxsize=1024)
def is_valid_host(value: bytes) -> bool:
    """Return True if `value` is host[:port] with a conservative reg-name, IPv4 or [IPv6] host.

    Cached: a kept-alive connection sends the same Host on every request.
    """
    m = _HOST.fullmatch(value)
    return m is not None and (m.group(1) is None or int(m.group(1)) <= 65535)


def parse_status_line(line: bytes) -> StatusLine:
    """Check a status line (without CRLF): `HTTP/1.x SP 3DIGIT [SP reason]`.

    Raises:
        RemoteProtocolError: 505 for a version other than 1.0/1.1, 400 for anything malformed (the
            response parser turns every status into 502).
    """
    major, minor = parse_version(line[:8])
    if major != 1 or minor > 1:
        raise _error(f"HTTP/{major}.{minor} response", 505, Reason.VERSION_NS)
    code = line[9:12]
    if line[8:9] != b" " or len(code) != 3 or not is_digits(code) or code[0] == 0x30:
        raise _error("malformed status line", 400, Reason.BAD_REQUEST)
    rest = line[12:]
    if rest and (rest[0] != 0x20 or not is_field_value(rest)):
        raise _error("malformed reason phrase", 400, Reason.BAD_REQUEST)
    return (b"1.0" if minor == 0 else b"1.1"), int(code), rest[1:]


# --------------------------------------------------------------------------------------------------
# Field lines


def parse_field_lines(block: bytes) -> list[tuple[bytes, bytes]]:
    """Parse CRLF-separated field lines strictly (the slow path and trailers).

    `block` holds complete lines without the final empty line, and no bare CR or LF (the scanner has
    run). Returns (lower-cased name, value without OWS) pairs.

    Raises:
        RemoteProtocolError: 400 Header for obs-fold, a missing colon, whitespace before the colon,
            a non-token name or a CTL in a value.
    """
    fields: list[tuple[bytes, bytes]] = []
    if not block:
        return fields
    for line in block.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            raise _error("obs-fold (a line starting with whitespace)", 400, Reason.HEADER)
        name, colon, value = line.partition(b":")
        if not colon:
            raise _error("field line without a colon", 400, Reason.HEADER)
        if not is_token(name):
            if name[-1:] in (b" ", b"\t"):
                raise _error("whitespace between field name and colon", 400, Reason.HEADER)
            raise _error(f"invalid field name {name[:32]!r}", 400, Reason.HEADER)
        value = value.strip(OWS)
        if not is_field_value(value):
            raise _error(f"invalid character in field {name[:32]!r}", 400, Reason.HEADER)
        fields.append((name.lower(), value))
    return fields


def raw_field_values(head: bytes, name: bytes) -> list[bytes]:
    """Return the unstripped values of field `name` (lower-case) in a head already known to be valid.

    Used only to look at whitespace the parser underneath strips (HTAB in Transfer-Encoding).
    """
    values = []
    for line in head.split(b"\r\n")[1:]:
        field, colon, value = line.partition(b":")
        if colon and field.lower() == name:
            values.append(value)
    return values


@functools.lru_cache(maxsize=256)
def connection_tokens(value: bytes) -> tuple[bytes, ...]:
    """Split a Connection value into lower-cased tokens, dropping empty list elements (RFC 9110 §5.6.1).

    Cached: clients send the same few values ("keep-alive", "close", "Upgrade") over and over.

    Raises:
        RemoteProtocolError: 400 Header if an element is not a token.
    """
    out = []
    for element in value.split(b","):
        element = element.strip(OWS)
        if not element:
            continue
        if not is_token(element):
            raise _error(f"Connection element {element[:32]!r} is not a token", 400, Reason.HEADER)
        out.append(element.lower())
    return tuple(out)


def _check_framing(
    cls: list[bytes], tes: list[bytes], head: bytes, *, te_forbidden: bool
) -> tuple[int | None, bool]:
    """The CL/TE policy shared by requests and responses. Returns (content_length, chunked)."""
    if cls and tes:
        # RFC 9112 §6.1 allows framing by TE alone; we refuse, as nginx 1.26 does (catalogue A1).
        raise _error("both Content-Length and Transfer-Encoding", 400, Reason.BAD_REQUEST)
    if cls:
        if len(cls) > 1:
            # RFC 9110 §8.6 allows collapsing identical values; refusing all is simpler and safer.
            raise _error("more than one Content-Length field", 400, Reason.BAD_REQUEST)
        value = cls[0]
        if not is_digits(value):
            if b"," in value:
                raise _error("Content-Length is a list", 400, Reason.BAD_REQUEST)
            raise _error(f"invalid Content-Length {value[:32]!r}", 400, Reason.NUMBER)
        if len(value) > 19 or int(value) > MAX_CONTENT_LENGTH:
            raise _error("Content-Length overflow", 400, Reason.NUMBER)
        return int(value), False
    if not tes:
        return None, False
    if len(tes) > 1:
        raise _error("more than one Transfer-Encoding field", 400, Reason.BAD_REQUEST)
    if te_forbidden:
        # RFC 9112 §6.1: HTTP/1.0 has no chunked coding; treat the framing as faulty.
        raise _error("Transfer-Encoding in an HTTP/1.0 message", 400, Reason.BAD_REQUEST)
    if b"\t" in head and any(b"\t" in v for v in raw_field_values(head, b"transfer-encoding")):
        # Legal OWS, but a classic smuggling obfuscation (`Transfer-Encoding:\tchunked`); no real
        # client sends it, and refusing it costs nothing.
        raise _error("HTAB in Transfer-Encoding", 400, Reason.HEADER)
    value = tes[0]
    if value == b"chunked":
        return None, True
    codings = []
    for element in value.split(b","):
        element = element.strip(b" ")
        if not is_token(element):
            raise _error(
                f"Transfer-Encoding element {element[:32]!r} is not a token", 400, Reason.HEADER
            )
        codings.append(element.lower())
    if codings.count(b"chunked") > 1:
        raise _error("chunked applied more than once", 400, Reason.BAD_REQUEST)
    if codings != [b"chunked"]:
        # Anything but exactly `chunked`: an unknown coding, one we do not decode, or chunked not
        # last. We frame only by chunked, so refuse (notes §1, catalogue A4).
        raise _error(f"transfer coding {value[:32]!r} not implemented", 501, Reason.NOT_IMPLEMENTED)
    return None, True


RequestFacts: TypeAlias = tuple[
    int | None, bool, bool, bool, bytes, tuple[bytes, ...], bytes | None
]
"""(content_length, chunked, keep_alive, expect_continue, host, connection tokens, upgrade)."""


def check_request_fields(
    specials: list[tuple[bytes, bytes]], head: bytes, line: RequestLine
) -> RequestFacts:
    """Apply the request policy to the special fields (`SPECIAL_REQUEST_FIELDS`) of a head.

    Args:
        specials: (lower-cased name, value) pairs of the special fields, in order.
        head: the raw head, consulted only for whitespace the parser underneath strips.
        line: the parsed request line.

    Raises:
        RemoteProtocolError: 400 (Hostname, BadRequest, Number, Header) or 501 (N/I).
    """
    hosts: list[bytes] = []
    cls: list[bytes] = []
    tes: list[bytes] = []
    upgrades: list[bytes] = []
    connection: tuple[bytes, ...] = ()
    expect_continue = False
    for name, value in specials:
        if name == b"host":
            hosts.append(value)
        elif name == b"connection":
            connection += connection_tokens(value)
        elif name == b"content-length":
            cls.append(value)
        elif name == b"transfer-encoding":
            tes.append(value)
        elif name == b"expect":
            expect_continue = expect_continue or value.lower() == b"100-continue"
        elif name == b"upgrade":
            upgrades.append(value)
    http_1_0 = line[2] == b"1.0"
    if len(hosts) != 1:
        if hosts:
            raise _error("more than one Host field", 400, Reason.HOSTNAME)
        if not http_1_0:
            raise _error("HTTP/1.1 request without Host", 400, Reason.HOSTNAME)
    elif not is_valid_host(hosts[0]):
        raise _error(f"invalid Host {hosts[0][:64]!r}", 400, Reason.HOSTNAME)
    content_length, chunked = _check_framing(cls, tes, head, te_forbidden=http_1_0)
    if http_1_0:
        keep_alive = b"keep-alive" in connection and b"close" not in connection
        expect_continue = False  # RFC 9110 §10.1.1: ignore 100-continue from HTTP/1.0
    else:
        keep_alive = b"close" not in connection
    upgrade = None
    if upgrades and b"upgrade" in connection and not http_1_0:
        upgrade = b", ".join(upgrades)
        # Bytes after an upgrade request belong to another protocol: never parse them as HTTP.
        keep_alive = False
    host = line[3] or (hosts[0].lower() if hosts else b"")
    return content_length, chunked, keep_alive, expect_continue, host, connection, upgrade


def check_response_fields(
    specials: list[tuple[bytes, bytes]], head: bytes, *, http_1_0: bool = False
) -> tuple[int | None, bool, tuple[bytes, ...]]:
    """Apply the response policy to the special fields (`SPECIAL_RESPONSE_FIELDS`) of a head.

    The same CL/TE rules as for requests (an HTTP/1.0 response may not be chunked either); the
    response parser reports every failure as 502.

    Returns:
        (content_length, chunked, connection tokens).
    """
    cls: list[bytes] = []
    tes: list[bytes] = []
    connection: tuple[bytes, ...] = ()
    for name, value in specials:
        if name == b"content-length":
            cls.append(value)
        elif name == b"transfer-encoding":
            tes.append(value)
        elif name == b"connection":
            connection += connection_tokens(value)
    content_length, chunked = _check_framing(cls, tes, head, te_forbidden=http_1_0)
    return content_length, chunked, connection


# --------------------------------------------------------------------------------------------------
# Chunked framing


def parse_chunk_size(line: bytes) -> int:
    """Parse a chunk-size line (without CRLF, no bare CR/LF): `1*16HEXDIG *chunk-ext`.

    Raises:
        RemoteProtocolError: 400 Number for a size that is not 1-16 plain hex digits (sign, `0x`,
            whitespace, `_`), 400 BadRequest for a malformed chunk extension.
    """
    size, semicolon, _ = line.partition(b";")
    if not is_hex(size):
        raise _error(f"invalid chunk size {size[:32]!r}", 400, Reason.NUMBER)
    if len(size) > MAX_CHUNK_SIZE_DIGITS:
        raise _error("chunk size has more than 16 hex digits", 400, Reason.NUMBER)
    if semicolon and _CHUNK_EXT.fullmatch(line, len(size)) is None:
        raise _error("malformed chunk extension", 400, Reason.BAD_REQUEST)
    return int(size, 16)
