"""Request-target and Host normalisation: the only form of a URL the router ever sees.

Owns: ``normalize_target``, ``normalize_path``, ``normalize_host``, ``RequestTarget``, ``HostPort`` and
the errors ``RequestRejected`` → {``TargetError``, ``HostError``} (each carries a status hint, always
400, and the http.sys HTTPERR reason to log).

The listener routes on the normalised path *and forwards that same path*, so a worker can never see a
different URL from the one that chose it: there is one decoding, here, and nothing downstream decodes
again before routing. The rules, in order:

1. ``?`` splits off the query (kept raw); a ``#`` anywhere is refused (no fragment in a request).
2. Raw bytes must be printable ASCII other than ``\\``: controls, space, DEL, bytes >= 0x80 and a raw
   backslash are refused, since servers disagree on what they mean.
3. Every ``%`` starts a valid ``%XX``. Escapes of unreserved characters (RFC 3986 §2.3) are decoded,
   which is how ``%2e%2e`` becomes a ``..`` segment and is then resolved (never smuggled past rule 5).
   ``%2F`` and ``%5C`` (an encoded separator) and encoded controls (``%00``-``%1F``, ``%7F``) are
   refused; every other escape stays encoded with uppercase hex (``%3f`` → ``%3F``).
4. Raw characters that RFC 3986 does not allow in a path (``" < > [ ] ^ ` { | }``) are percent-encoded,
   so the forwarded target is always a valid URI path and equals what a prefix would spell.
5. Empty segments (``//``) and ``.`` segments are dropped and ``..`` removes the segment before it
   (RFC 3986 §5.2.4, applied after collapsing ``//`` as a file system would); a ``..`` that would climb
   above the root is refused instead of being clamped. A trailing slash, or a trailing ``.``/``..``
   segment, leaves the result ending in ``/``.

Case is kept: matching is case-insensitive (the route table lowercases), but the path forwarded to the
worker is the client's.

Must not import: anything but the standard library (no ``orchestrator`` module, no I/O, no time).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

__all__ = [
    "HostError",
    "HostPort",
    "RequestRejected",
    "RequestTarget",
    "TargetError",
    "normalize_host",
    "normalize_path",
    "normalize_target",
]


class RequestRejected(ValueError):
    """A request the listener must refuse before routing; answer ``status_hint`` and close."""

    status_hint: ClassVar[int] = 400
    #: The http.sys HTTPERR reason phrase, for the error log and test assertions.
    reason: ClassVar[str] = "BadRequest"


class TargetError(RequestRejected):
    """The request target is malformed or ambiguous (encoded separator, bad escape, climbing ``..``)."""

    reason: ClassVar[str] = "URL"


class HostError(RequestRejected):
    """The Host header (or the authority of an absolute-form target) is not a valid host[:port]."""

    reason: ClassVar[str] = "Hostname"


class HostPort(NamedTuple):
    """A normalised host (lowercase name, dotted IPv4 or bracketed compressed IPv6) and its port."""

    host: str
    port: int | None


@dataclass(frozen=True, slots=True)
class RequestTarget:
    """A normalised request target.

    ``path`` is normalised (case kept); ``query`` is the raw text after ``?`` (``None`` when there is
    no ``?``, ``""`` for a bare ``?``); ``scheme`` and ``authority`` are set only for an absolute-form
    target, whose authority takes the place of the Host header (RFC 9112 §3.2.2).
    """

    path: str
    query: str | None = None
    scheme: str | None = None
    authority: HostPort | None = None


# A path that is already normal: non-empty segments of plain pchars that do not start with '.', so no
# dot segment, no escape, no '//' and nothing to encode. Most requests take this branch and skip the
# general algorithm (it only has to be fast, the general path gives the same answer).
_ALREADY_NORMAL = re.compile(
    rb"(?:/[A-Za-z0-9\-_~!$&'()*+,;=:@][A-Za-z0-9\-._~!$&'()*+,;=:@]*)*/?", re.ASCII
)
_FORBIDDEN_RAW = re.compile(rb"[\x00-\x20\x7f-\xff\\#]")
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
# Printable ASCII that RFC 3986 allows neither in a path nor as a delimiter there; encoded, not refused,
# because clients do send them raw and they carry no structure.
_TO_ENCODE = re.compile(rb'["<>\[\]^`{|}]')
_QUERY_FORBIDDEN = re.compile(rb"[\x00-\x20\x7f-\xff#]")
_ABSOLUTE = re.compile(rb"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)(.*)", re.DOTALL)
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?", re.ASCII)
_PORT = re.compile(rb"[0-9]{1,5}")


def _decode_escape(match: re.Match[bytes]) -> bytes:
    code = int(match.group(1), 16)
    if code in _UNRESERVED:
        return bytes((code,))
    if code in (0x2F, 0x5C):
        # An encoded separator is a second, invisible path structure: http.sys, IIS and most proxies
        # disagree on it, so no answer but 400 is safe.
        raise TargetError(f"encoded path separator %{code:02X} in the request target")
    if code < 0x20 or code == 0x7F:
        raise TargetError(f"encoded control character %{code:02X} in the request target")
    return b"%%%02X" % code


def _encode_raw(match: re.Match[bytes]) -> bytes:
    return b"%%%02X" % match.group(0)[0]


def _normal_path(raw: bytes) -> str:
    """Normalise an origin-form path (starts with ``/``, no query)."""
    if _ALREADY_NORMAL.fullmatch(raw):
        return raw.decode("ascii")
    bad = _FORBIDDEN_RAW.search(raw)
    if bad:
        char = bad.group(0)
        what = (
            "a backslash"
            if char == b"\\"
            else "a fragment ('#')"
            if char == b"#"
            else f"the raw byte 0x{char[0]:02X}"
        )
        raise TargetError(f"request target contains {what}")
    if _BAD_ESCAPE.search(raw):
        raise TargetError("request target has a '%' that does not start a %XX escape")
    decoded = _TO_ENCODE.sub(_encode_raw, _ESCAPE.sub(_decode_escape, raw)).decode("ascii")
    segments = decoded.split("/")[1:]
    kept: list[str] = []
    trailing_slash = False
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if segment in ("", ".", ".."):
            if segment == "..":
                if not kept:
                    raise TargetError("request target climbs above the root with '..'")
                kept.pop()
            # A directory reference at the end ("/a/", "/a/.", "/a/b/..") still names a directory.
            trailing_slash = index == last
            continue
        kept.append(segment)
        trailing_slash = False
    if not kept:
        return "/"
    return "/" + "/".join(kept) + ("/" if trailing_slash else "")


def _raw_query(raw: bytes) -> str:
    bad = _QUERY_FORBIDDEN.search(raw)
    if bad:
        char = bad.group(0)
        what = "a fragment ('#')" if char == b"#" else f"the raw byte 0x{char[0]:02X}"
        raise TargetError(f"request query contains {what}")
    return raw.decode("ascii")


def normalize_target(raw_target: bytes) -> RequestTarget:
    """Normalise a request target in origin form (``/path?q``) or absolute form (``http://h/path``).

    Args:
        raw_target: the request target exactly as it appeared on the request line.

    Returns:
        The normalised path (case kept), the raw query, and for absolute form the scheme and the
        normalised authority (which replaces the Host header for routing).

    Raises:
        TargetError: the target is empty, ``*`` (the caller answers ``OPTIONS *`` itself), in
            authority form, has another scheme than http/https, user information, a fragment, a
            forbidden raw byte, a bad or forbidden escape, or climbs above the root.
    """
    scheme: str | None = None
    authority: HostPort | None = None
    rest = raw_target
    if not raw_target.startswith(b"/"):
        if raw_target == b"*":
            raise TargetError("'*' is a request target only for OPTIONS")
        absolute = _ABSOLUTE.fullmatch(raw_target)
        if absolute is None:
            raise TargetError("request target must begin with '/' or 'http://'")
        scheme = absolute.group(1).decode("ascii").lower()
        if scheme not in ("http", "https"):
            raise TargetError(f"request target scheme must be http or https, not {scheme!r}")
        if b"@" in absolute.group(2):
            raise TargetError("request target must not carry user information ('user@')")
        if _FORBIDDEN_RAW.search(absolute.group(2)):
            raise TargetError("request target authority contains a forbidden byte")
        try:
            authority = normalize_host(absolute.group(2))
        except HostError as exc:
            raise TargetError(f"request target authority: {exc}") from exc
        rest = absolute.group(3)
        if not rest.startswith(b"/"):
            # "http://host" and "http://host?q" name the root (RFC 9110 §4.2.3).
            rest = b"/" + rest
    raw_path, question, raw_query = rest.partition(b"?")
    query = _raw_query(raw_query) if question else None
    return RequestTarget(_normal_path(raw_path), query, scheme, authority)


def normalize_path(raw_target: bytes) -> str:
    """The normalised path of a request target (see ``normalize_target``); the query is dropped.

    Args:
        raw_target: the request target exactly as it appeared on the request line, in origin form or
            absolute form.

    Returns:
        The normalised path, beginning with ``/``, case kept.

    Raises:
        TargetError: as ``normalize_target``.
    """
    return normalize_target(raw_target).path


def normalize_host(host_header: bytes) -> HostPort:
    """Validate and normalise a Host header value (or an absolute-form authority).

    Names are lowercased and lose a trailing dot; IPv4 must be four decimal octets; IPv6 must be in
    brackets and is compressed (``[0:0::1]`` → ``[::1]``), the spelling URL prefixes use. A port is one
    to five digits from 1 to 65535. Optional whitespace around the value is ignored.

    Args:
        host_header: the field value.

    Returns:
        ``(host, port)``, the port ``None`` when absent.

    Raises:
        HostError: empty, non-ASCII, user information, a bad IPv6 literal (or a zone id), a bad port,
            or a name that is not dot-separated labels of letters, digits, ``-`` and ``_``.
    """
    value = host_header.strip(b" \t")
    if not value:
        raise HostError("Host is empty")
    if not value.isascii():
        raise HostError("Host contains non-ASCII bytes")
    text = value.decode("ascii")
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise HostError(f"IPv6 host {text!r} is missing its closing ']'")
        literal, after = text[1:close], text[close + 1 :]
        if "%" in literal:
            raise HostError("IPv6 zone identifiers are not accepted in Host")
        try:
            host = f"[{ipaddress.IPv6Address(literal).compressed}]"
        except ValueError as exc:
            raise HostError(f"{text[: close + 1]!r} is not an IPv6 address") from exc
        if after and not after.startswith(":"):
            raise HostError(f"unexpected {after!r} after the IPv6 address in Host")
        port_text = after[1:] if after else None
    else:
        if text.count(":") > 1:
            raise HostError(f"IPv6 host {text!r} must be in brackets ('[::1]:80')")
        name, colon, port_part = text.rpartition(":")
        if not colon:
            name, port_text = text, None
        else:
            port_text = port_part
        host = _normal_name(name)
    return HostPort(host, None if port_text is None else _port(port_text))


def _normal_name(name: str) -> str:
    lowered = name.lower()
    if not lowered:
        raise HostError("Host has a port but no host")
    if re.fullmatch(r"[0-9.]+", lowered):
        # All digits and dots reads as IPv4 everywhere (WHATWG even accepts "1.2.3" or "0x7f.1"): only
        # the dotted-quad form is unambiguous.
        try:
            return str(ipaddress.IPv4Address(lowered))
        except ValueError as exc:
            raise HostError(f"{name!r} is not an IPv4 address") from exc
    stripped = lowered[:-1] if lowered.endswith(".") else lowered
    labels = stripped.split(".")
    if len(stripped) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise HostError(
            f"Host {name!r} is not a host name (dot-separated labels of letters, digits, '-', '_')"
        )
    return stripped


def _port(text: str) -> int:
    if not _PORT.fullmatch(text.encode("ascii")) or not 0 < int(text) <= 65535:
        raise HostError(f"port {text!r} in Host must be a number from 1 to 65535")
    return int(text)
