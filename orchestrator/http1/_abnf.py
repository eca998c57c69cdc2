"""Character classes of RFC 9110/9112 as byte tables, and checks built on `bytes.translate`.

Owns: the few grammar facts every other module needs (token, field-value, hex digit, OWS). The checks
delete the allowed bytes with `bytes.translate` and test whether anything is left, so they run in C with
no Python loop over the input.

Must not import: anything from `orchestrator`, nor any other module of this package.
"""

from __future__ import annotations

from typing import Final

DIGITS: Final = b"0123456789"
HEXDIGITS: Final = b"0123456789abcdefABCDEF"
ALPHA: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# RFC 9110 §5.6.2: tchar.
TOKEN_CHARS: Final = b"!#$%&'*+-.^_`|~" + DIGITS + ALPHA
# RFC 9110 §5.5: field-vchar / SP / HTAB, with obs-text (0x80-0xFF) allowed as the RFC permits.
FIELD_VALUE_CHARS: Final = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
# Visible ASCII: what may appear in a request-target (anything else must be percent-encoded).
VCHAR: Final = bytes(range(0x21, 0x7F))
OWS: Final = b" \t"


def is_token(data: bytes) -> bool:
    """Return True if `data` is a non-empty RFC 9110 token."""
    return bool(data) and not data.translate(None, TOKEN_CHARS)


def is_field_value(data: bytes) -> bool:
    """Return True if `data` holds only field-value bytes (no CTL except HTAB, no DEL)."""
    return not data.translate(None, FIELD_VALUE_CHARS)


def is_hex(data: bytes) -> bool:
    """Return True if `data` is a non-empty run of hex digits (no sign, no `0x`, no `_`)."""
    return bool(data) and not data.translate(None, HEXDIGITS)


def is_digits(data: bytes) -> bool:
    """Return True if `data` is a non-empty run of ASCII decimal digits."""
    return bool(data) and not data.translate(None, DIGITS)


def is_vchar(data: bytes) -> bool:
    """Return True if `data` is non-empty visible ASCII (no space, no CTL, no obs-text)."""
    return bool(data) and not data.translate(None, VCHAR)
