"""Values the backend derives for URLs and their groups: route ids, timers, refusals explained.

Owns: the route id, the 64-bit UrlContext every URL carries (``route_id``: group name and canonical
URL prefix in, UrlContext out; ``decode_route_id``, ``RouteId``, ``ROUTE_ID_VERSION``); the timers of
sessions and URL groups as http.sys takes them (``session_timeout_limits``, ``group_timeout_limits``:
16-bit whole seconds); and ``url_error``, the operator's reading of a refused
``HttpAddUrlToUrlGroup``. A worker (or a test) recognises the route a request took by recomputing
``route_id(group, prefix)`` and comparing it with the request's UrlContext.
Pure (values in, values out): imports ``model``, ``errors`` and the payload types and error codes of
``orchestrator.httpapi``; must not call http.sys, import ctypes or the backend.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

from orchestrator.errors import BackendError, PermanentBackendError, TemporaryBackendError
from orchestrator.httpapi._ffi import ErrorCode, HttpApiError
from orchestrator.httpapi.binding import TimeoutLimits
from orchestrator.model.desired import TimeoutOverrides, Timeouts

__all__ = [
    "ROUTE_ID_VERSION",
    "RouteId",
    "decode_route_id",
    "group_timeout_limits",
    "route_id",
    "session_timeout_limits",
    "url_error",
]

#: Version 1 of the UrlContext layout (64 bits, most significant first):
#:   bits 63..56  version (1; 0 is never used, so a context of 0 means "not a route id")
#:   bits 55..24  CRC-32 of the URL group's name (UTF-8)
#:   bits 23..0   the low 24 bits of the CRC-32 of the URL prefix in canonical form (UTF-8)
#: A route id depends only on its group and prefix, so adding or removing other prefixes never
#: changes it. A worker recognises a route by recomputing ``route_id(group, prefix)``.
ROUTE_ID_VERSION = 1
_VERSION_SHIFT = 56
_GROUP_SHIFT = 24
_URL_MASK = 0xFFFFFF


@dataclass(frozen=True, slots=True)
class RouteId:
    """A decoded UrlContext: its layout version and the two hashes."""

    version: int
    group_hash: int
    url_hash: int

    def matches(self, group: str, url: str) -> bool:
        """Whether this route id was made for ``url`` in URL group ``group``."""
        return decode_route_id(route_id(group, url)) == self


def route_id(group: str, url: str) -> int:
    """The UrlContext of ``url`` (canonical prefix) in URL group ``group`` (layout version 1)."""
    group_hash = zlib.crc32(group.encode("utf-8"))
    url_hash = zlib.crc32(url.encode("utf-8")) & _URL_MASK
    return (ROUTE_ID_VERSION << _VERSION_SHIFT) | (group_hash << _GROUP_SHIFT) | url_hash


def decode_route_id(context: int) -> RouteId:
    """Split a UrlContext into version and hashes.

    Raises:
        ValueError: not a 64-bit value, or a version this code does not know (0 included).
    """
    if not 0 <= context < 1 << 64:
        raise ValueError(f"UrlContext {context} is not a 64-bit value")
    version = context >> _VERSION_SHIFT
    if version != ROUTE_ID_VERSION:
        raise ValueError(f"UrlContext {context:#x} has route id version {version}, not 1")
    return RouteId(version, (context >> _GROUP_SHIFT) & 0xFFFFFFFF, context & _URL_MASK)


# --- timers (HTTP_TIMEOUT_LIMIT_INFO) ----------------------------------------------------------------
_USHORT_MAX = 0xFFFF


def _whole_seconds(name: str, value: float) -> int:
    seconds = math.ceil(value)
    if seconds > _USHORT_MAX:
        raise ValueError(f"{name} of {value:g}s is more than http.sys allows ({_USHORT_MAX}s)")
    return max(0, seconds)


def session_timeout_limits(timeouts: Timeouts) -> TimeoutLimits:
    """A session's timers as ``HTTP_TIMEOUT_LIMIT_INFO`` (seconds rounded up).

    Raises:
        ValueError: a timer longer than 65535 s.
    """
    return TimeoutLimits(
        entity_body_s=_whole_seconds("entityBody", timeouts.entity_body_s),
        drain_entity_body_s=_whole_seconds("drainEntityBody", timeouts.drain_entity_body_s),
        request_queue_s=_whole_seconds("requestQueue", timeouts.request_queue_s),
        idle_connection_s=_whole_seconds("idleConnection", timeouts.idle_connection_s),
        header_wait_s=_whole_seconds("headerWait", timeouts.header_wait_s),
        min_send_rate=timeouts.min_send_rate,
    )


def group_timeout_limits(overrides: TimeoutOverrides) -> TimeoutLimits:
    """A URL group's timers; a field left unset is 0, which http.sys reads as "inherit the session".

    Raises:
        ValueError: a timer longer than 65535 s.
    """

    def pick(name: str, value: float | None) -> int:
        return 0 if value is None else _whole_seconds(name, value)

    return TimeoutLimits(
        entity_body_s=pick("entityBody", overrides.entity_body_s),
        drain_entity_body_s=pick("drainEntityBody", overrides.drain_entity_body_s),
        request_queue_s=pick("requestQueue", overrides.request_queue_s),
        idle_connection_s=pick("idleConnection", overrides.idle_connection_s),
        header_wait_s=pick("headerWait", overrides.header_wait_s),
        min_send_rate=overrides.min_send_rate or 0,
    )


# --- refused URLs ------------------------------------------------------------------------------------
def url_error(group: str, url: str, exc: HttpApiError) -> BackendError:
    """What a refused ``HttpAddUrlToUrlGroup`` means for the operator."""
    code = exc.code
    where = f"urlgroup/{group}: {url}"
    if code == ErrorCode.ERROR_ALREADY_EXISTS:
        return TemporaryBackendError(
            f"{where} is already registered by another application",
            "See netsh http show servicestate; free the prefix or change it.",
            delay_s=30.0,
        )
    if code == ErrorCode.ERROR_ACCESS_DENIED:
        return TemporaryBackendError(
            f"{where}: access denied (no URL reservation for the controller's account)",
            f"Run as an administrator, or reserve it: netsh http add urlacl url={url} user=ACCOUNT",
            delay_s=60.0,
        )
    if code == ErrorCode.ERROR_SHARING_VIOLATION:
        return TemporaryBackendError(
            f"{where}: the port is held by a program that does not use http.sys", delay_s=30.0
        )
    if code == ErrorCode.ERROR_INVALID_PARAMETER:
        return PermanentBackendError(f"{where}: http.sys refused the URL prefix (87)")
    if code in (1, ErrorCode.ERROR_CALL_NOT_IMPLEMENTED):
        return PermanentBackendError(
            f"{where}: not supported by this http.sys ({exc.name})",
            "Wine's http.sys has no https and takes one URL per URL group.",
        )
    return TemporaryBackendError(f"{where}: {exc.function} failed with {exc.name} ({exc.code})")
