"""The worker's side of a request queue: receive a request, read its body, send a response.

Owns: ``ReceivedRequest`` (a request copied out of the receive buffer into Python values),
``parse_request`` (decodes an ``HTTP_REQUEST_V2`` in memory; pure ctypes reads, so it is tested on
Linux on a hand-built request), ``PreparedResponse``/``build_response`` (an ``HTTP_RESPONSE_V2``
with known, repeated known and unknown headers and one FromMemory chunk, which is all Wine 8 sends),
and
``QueueWorker`` (synchronous ``HttpReceiveHttpRequest``/``HttpReceiveRequestEntityBody``/
``HttpSendHttpResponse`` on a queue handle). ctypes releases the GIL during these calls, so one
thread per pending receive is workable; closing the handle from another thread ends a receive with
995.
Imports ``_ffi`` only. Never calls the functions Wine 8 aborts on (``_ffi.WINE_ABORTING_FUNCTIONS``).
"""

from __future__ import annotations

import ctypes
import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from orchestrator.httpapi import _ffi
from orchestrator.httpapi._ffi import ErrorCode, HttpApiError

__all__ = [
    "PreparedResponse",
    "QueueWorker",
    "ReceivedRequest",
    "build_response",
    "parse_request",
]

RECEIVE_BUFFER_BYTES = 16 * 1024  # headers fit; ERROR_MORE_DATA grows it
BODY_CHUNK_BYTES = 64 * 1024
_RESPONSE_HEADER_IDS = {name.lower(): i for i, name in enumerate(_ffi.RESPONSE_HEADER_NAMES)}
# Known headers that may be sent more than once (never comma-folded): a cookie's Expires has a comma,
# challenges are hard to split again. Any other known header has one value.
_REPEATABLE = frozenset(
    _RESPONSE_HEADER_IDS[n] for n in ("set-cookie", "www-authenticate", "proxy-authenticate")
)


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as http.sys parsed it."""

    request_id: int
    connection_id: int
    #: The context given to ``HttpAddUrlToUrlGroup`` for the prefix that matched (the route id).
    url_context: int
    method: str
    version: tuple[int, int]
    #: The request target as sent (``/app/x?y=1``).
    raw_url: str
    #: The cooked URL: ``http://host:port/app/x?y=1`` and its pieces.
    full_url: str
    host: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    remote: tuple[str, int] | None
    body: bytes = b""
    #: More entity body than what came with the request (read with ``QueueWorker.read_body``).
    more_body: bool = False

    def header(self, name: str) -> str | None:
        """The first value of a header, by case-insensitive name."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


def _chars(address: int | None, byte_length: int) -> str:
    """A byte-counted UTF-16 string (not NUL-terminated by contract)."""
    if not address or byte_length <= 0:
        return ""
    return ctypes.wstring_at(address, byte_length // 2)


def _bytes(address: int | None, length: int) -> bytes:
    if not address or length <= 0:
        return b""
    return ctypes.string_at(address, length)


def _sockaddr(address: int | None) -> tuple[str, int] | None:
    if not address:
        return None
    family = int(_ffi.USHORT.from_address(address).value)
    if family == _ffi.AF_INET:
        v4 = _ffi.SOCKADDR_IN.from_address(address)
        return str(ipaddress.IPv4Address(bytes(v4.sin_addr))), int.from_bytes(
            bytes(v4.sin_port), "big"
        )
    if family == _ffi.AF_INET6:
        v6 = _ffi.SOCKADDR_IN6.from_address(address)
        return str(ipaddress.IPv6Address(bytes(v6.sin6_addr))), int.from_bytes(
            bytes(v6.sin6_port), "big"
        )
    return None


def parse_request(address: int) -> ReceivedRequest:
    """Copy an ``HTTP_REQUEST_V2`` at ``address`` (inside a receive buffer) into Python values."""
    req = _ffi.HTTP_REQUEST_V2.from_address(address)
    verb = int(req.Verb)
    if verb == _ffi.Verb.UNKNOWN:
        method = _bytes(req.pUnknownVerb, int(req.UnknownVerbLength)).decode("ascii", "replace")
    else:
        try:
            method = _ffi.Verb(verb).name
        except ValueError:
            method = f"VERB_{verb}"
    headers: list[tuple[str, str]] = []
    for header_id, known in enumerate(req.Headers.KnownHeaders):
        if known.pRawValue and known.RawValueLength:
            value = _bytes(known.pRawValue, int(known.RawValueLength)).decode("latin-1")
            headers.append((_ffi.REQUEST_HEADER_NAMES[header_id], value))
    count = int(req.Headers.UnknownHeaderCount)
    if count and req.Headers.pUnknownHeaders:
        unknown = (_ffi.HTTP_UNKNOWN_HEADER * count).from_address(req.Headers.pUnknownHeaders)
        for item in unknown:
            name = _bytes(item.pName, int(item.NameLength)).decode("latin-1")
            value = _bytes(item.pRawValue, int(item.RawValueLength)).decode("latin-1")
            headers.append((name, value))
    body = bytearray()
    chunks = int(req.EntityChunkCount)
    if chunks and req.pEntityChunks:
        for chunk in (_ffi.HTTP_DATA_CHUNK * chunks).from_address(req.pEntityChunks):
            if chunk.DataChunkType == _ffi.DataChunkType.FROM_MEMORY:
                body += _bytes(chunk.FromMemory.pBuffer, int(chunk.FromMemory.BufferLength))
    cooked = req.CookedUrl
    return ReceivedRequest(
        request_id=int(req.RequestId),
        connection_id=int(req.ConnectionId),
        url_context=int(req.UrlContext),
        method=method,
        version=(int(req.Version.MajorVersion), int(req.Version.MinorVersion)),
        raw_url=_bytes(req.pRawUrl, int(req.RawUrlLength)).decode("latin-1"),
        full_url=_chars(cooked.pFullUrl, int(cooked.FullUrlLength)),
        host=_chars(cooked.pHost, int(cooked.HostLength)),
        path=_chars(cooked.pAbsPath, int(cooked.AbsPathLength)),
        query=_chars(cooked.pQueryString, int(cooked.QueryStringLength)),
        headers=tuple(headers),
        remote=_sockaddr(req.Address.pRemoteAddress),
        body=bytes(body),
        more_body=bool(int(req.Flags) & _ffi.HTTP_REQUEST_FLAG_MORE_ENTITY_BODY_EXISTS),
    )


@dataclass(slots=True)
class PreparedResponse:
    """An ``HTTP_RESPONSE_V2`` and the buffers its pointers refer to (keep it alive while sending)."""

    struct: _ffi.HTTP_RESPONSE_V2
    keep: list[object] = field(default_factory=list)


def build_response(
    status: int,
    reason: str = "",
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    multiple_known_headers: bool = True,
) -> PreparedResponse:
    """Lay out a response: known headers by id, the rest as unknown headers, body as one chunk.

    ``Set-Cookie``, ``WWW-Authenticate`` and ``Proxy-Authenticate`` given more than once (they
    cannot be comma-folded) go, every value in order, into an ``HTTP_MULTIPLE_KNOWN_HEADERS``
    response info, their slot left empty, as .NET's HttpListener does; with
    ``multiple_known_headers=False`` (Wine 8, which ignores response info) the first value takes the
    slot and the others go out as unknown headers of the same name.

    Raises:
        ValueError: a status outside 100..999, or another known header given twice.
    """
    if not 100 <= status <= 999:
        raise ValueError(f"status {status} is not a three-digit HTTP status")
    resp = _ffi.HTTP_RESPONSE_V2()
    prepared = PreparedResponse(resp)
    keep = prepared.keep

    def buffer(data: bytes) -> int:
        buf = ctypes.create_string_buffer(data, len(data) or 1)
        keep.append(buf)
        return ctypes.addressof(buf)

    resp.Version = _ffi.HTTP_VERSION(1, 1)
    resp.StatusCode = status
    reason_bytes = reason.encode("latin-1")
    resp.pReason = buffer(reason_bytes)
    resp.ReasonLength = len(reason_bytes)
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    unknown: list[tuple[bytes, bytes]] = []
    known: dict[int, list[tuple[str, bytes]]] = {}
    for name, value in pairs:
        raw = value.encode("latin-1")
        header_id = _RESPONSE_HEADER_IDS.get(name.lower())
        if header_id is None:
            unknown.append((name.encode("latin-1"), raw))
            continue
        values = known.setdefault(header_id, [])
        if values and header_id not in _REPEATABLE:
            raise ValueError(f"header {name!r} given twice (fold it, or send it once)")
        values.append((name, raw))
    infos: list[_ffi.HTTP_MULTIPLE_KNOWN_HEADERS] = []
    for header_id, values in known.items():
        if len(values) == 1 or not multiple_known_headers:
            slot = resp.Headers.KnownHeaders[header_id]
            slot.pRawValue = buffer(values[0][1])
            slot.RawValueLength = len(values[0][1])
            unknown.extend((name.encode("latin-1"), raw) for name, raw in values[1:])
            continue
        items = (_ffi.HTTP_KNOWN_HEADER * len(values))()
        keep.append(items)
        for item, (_, raw) in zip(items, values, strict=True):
            item.pRawValue = buffer(raw)
            item.RawValueLength = len(raw)
        info = _ffi.HTTP_MULTIPLE_KNOWN_HEADERS()
        info.HeaderId = header_id
        info.Flags = _ffi.HTTP_RESPONSE_INFO_FLAGS_PRESERVE_ORDER  # as given, as .NET does
        info.KnownHeaderCount = len(values)
        info.KnownHeaders = ctypes.addressof(items)
        infos.append(info)
    if infos:
        keep.extend(infos)
        table = (_ffi.HTTP_RESPONSE_INFO * len(infos))()
        keep.append(table)
        for entry, info in zip(table, infos, strict=True):
            entry.Type = _ffi.HTTP_RESPONSE_INFO_TYPE_MULTIPLE_KNOWN_HEADERS
            entry.Length = ctypes.sizeof(info)
            entry.pInfo = ctypes.addressof(info)
        resp.pResponseInfo = ctypes.addressof(table)
        resp.ResponseInfoCount = len(infos)
    if unknown:
        array = (_ffi.HTTP_UNKNOWN_HEADER * len(unknown))()
        keep.append(array)
        for slot, (name_bytes, raw) in zip(array, unknown, strict=True):
            slot.pName = buffer(name_bytes)
            slot.NameLength = len(name_bytes)
            slot.pRawValue = buffer(raw)
            slot.RawValueLength = len(raw)
        resp.Headers.pUnknownHeaders = ctypes.addressof(array)
        resp.Headers.UnknownHeaderCount = len(unknown)
    if body:
        body_buf = ctypes.create_string_buffer(body, len(body))
        chunk = _ffi.HTTP_DATA_CHUNK()
        chunk.DataChunkType = _ffi.DataChunkType.FROM_MEMORY
        chunk.FromMemory.pBuffer = ctypes.addressof(body_buf)
        chunk.FromMemory.BufferLength = len(body)
        keep.extend((body_buf, chunk))
        resp.pEntityChunks = ctypes.addressof(chunk)
        resp.EntityChunkCount = 1
    return prepared


class QueueWorker:
    """Synchronous receive and send on one request queue handle (Windows, or under Wine)."""

    def __init__(
        self,
        handle: int,
        api: _ffi.HttpApi | None = None,
        *,
        multiple_known_headers: bool = True,
    ) -> None:
        """Serve ``handle`` (opened with OPEN_EXISTING, or inherited from the controller);
        ``multiple_known_headers`` as in ``build_response`` (the host's capability)."""
        self.handle = handle
        self._api = api
        self.multiple_known_headers = multiple_known_headers

    @property
    def api(self) -> _ffi.HttpApi:
        """The declared functions (loads the DLLs the first time)."""
        if self._api is None:
            self._api = _ffi.load()
        return self._api

    def receive(
        self, *, buffer_bytes: int = RECEIVE_BUFFER_BYTES, read_body: bool = True
    ) -> ReceivedRequest:
        """Block until a request arrives; copy it (and the body that came with it) out.

        Args:
            buffer_bytes: the first receive buffer (it grows when http.sys says it is too small).
            read_body: also read the rest of the body (else ``more_body`` says there is more, for
                ``read_body_chunk``).

        Raises:
            HttpApiError: 995 when the handle was closed or shut down meanwhile.
        """
        request_id = 0
        size = max(buffer_bytes, ctypes.sizeof(_ffi.HTTP_REQUEST_V2))
        while True:
            # A ULONGLONG array keeps the HTTP_REQUEST 8-byte aligned.
            buf = (_ffi.ULONGLONG * ((size + 7) // 8))()
            received = _ffi.ULONG(0)
            try:
                self.api.HttpReceiveHttpRequest(
                    self.handle,
                    request_id,
                    _ffi.HTTP_RECEIVE_REQUEST_FLAG_COPY_BODY,
                    buf,
                    ctypes.sizeof(buf),
                    ctypes.byref(received),
                    None,
                )
            except HttpApiError as exc:
                if exc.code != ErrorCode.ERROR_MORE_DATA:
                    raise
                # Too small: the partial request names its id and the size needed; retry that id.
                request_id = int(_ffi.HTTP_REQUEST_V2.from_buffer(buf).RequestId)
                size = max(int(received.value), size * 2)
                continue
            request = parse_request(ctypes.addressof(buf))
            if not request.more_body or not read_body:
                return request
            rest = self.read_body(request.request_id)
            return dataclasses.replace(request, body=request.body + rest, more_body=False)

    def read_body_chunk(self, request_id: int, max_bytes: int) -> bytes:
        """The next piece of a request's entity body, at most ``max_bytes`` (``b""`` at its end)."""
        buf = ctypes.create_string_buffer(max_bytes)
        while True:
            got = _ffi.ULONG(0)
            try:
                self.api.HttpReceiveRequestEntityBody(
                    self.handle, request_id, 0, buf, max_bytes, ctypes.byref(got), None
                )
            except HttpApiError as exc:
                if exc.code == ErrorCode.ERROR_HANDLE_EOF:
                    return b""
                raise
            if got.value:
                return buf.raw[: int(got.value)]

    def read_body(self, request_id: int) -> bytes:
        """Read the remaining entity body of a request until ``ERROR_HANDLE_EOF``."""
        data = bytearray()
        buf = ctypes.create_string_buffer(BODY_CHUNK_BYTES)
        while True:
            got = _ffi.ULONG(0)
            try:
                self.api.HttpReceiveRequestEntityBody(
                    self.handle, request_id, 0, buf, BODY_CHUNK_BYTES, ctypes.byref(got), None
                )
            except HttpApiError as exc:
                if exc.code == ErrorCode.ERROR_HANDLE_EOF:
                    return bytes(data)
                raise
            data += buf.raw[: int(got.value)]

    def respond(
        self,
        request_id: int,
        status: int,
        reason: str = "",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        flags: int = 0,
    ) -> int:
        """Send a complete response in one call; returns the bytes http.sys reports sent."""
        prepared = build_response(
            status, reason, headers, body, multiple_known_headers=self.multiple_known_headers
        )
        sent = _ffi.ULONG(0)
        self.api.HttpSendHttpResponse(
            self.handle,
            request_id,
            flags,
            ctypes.byref(prepared.struct),
            None,
            ctypes.byref(sent),
            None,
            0,
            None,
            None,
        )
        return int(sent.value)
