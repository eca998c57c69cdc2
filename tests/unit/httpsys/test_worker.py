"""Decoding an HTTP_REQUEST_V2 and laying out an HTTP_RESPONSE_V2, on hand-built memory."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from orchestrator.httpapi import _ffi
from orchestrator.httpapi.worker import build_response, parse_request


class RequestBuilder:
    """Builds an HTTP_REQUEST_V2 the way http.sys fills a receive buffer (buffers kept alive)."""

    def __init__(self) -> None:
        self.req = _ffi.HTTP_REQUEST_V2()
        self.keep: list[Any] = []

    def _buf(self, data: bytes) -> int:
        buf = ctypes.create_string_buffer(data, len(data) or 1)
        self.keep.append(buf)
        return ctypes.addressof(buf)

    def _wide(self, text: str) -> tuple[int, int]:
        buf = ctypes.create_unicode_buffer(text)
        self.keep.append(buf)
        return ctypes.addressof(buf), len(text.encode("utf-16-le"))

    def build(self) -> _ffi.HTTP_REQUEST_V2:
        r = self.req
        r.RequestId, r.ConnectionId, r.UrlContext = 0x1122334455667788, 7, 21
        r.Version = _ffi.HTTP_VERSION(1, 1)
        r.Verb = _ffi.Verb.POST
        raw = b"/app/deep/y?q=1"
        r.pRawUrl, r.RawUrlLength = self._buf(raw), len(raw)
        cooked = r.CookedUrl
        cooked.pFullUrl, cooked.FullUrlLength = self._wide("http://localhost:8080/app/deep/y?q=1")
        cooked.pHost, cooked.HostLength = self._wide("localhost:8080")
        cooked.pAbsPath, cooked.AbsPathLength = self._wide("/app/deep/y")
        cooked.pQueryString, cooked.QueryStringLength = self._wide("?q=1")
        host = b"localhost:8080"
        known = r.Headers.KnownHeaders[_ffi.HEADER_ID_HOST]
        known.pRawValue, known.RawValueLength = self._buf(host), len(host)
        unknown = (_ffi.HTTP_UNKNOWN_HEADER * 1)()
        self.keep.append(unknown)
        unknown[0].pName, unknown[0].NameLength = self._buf(b"X-Trace"), 7
        unknown[0].pRawValue, unknown[0].RawValueLength = self._buf(b"abc"), 3
        r.Headers.pUnknownHeaders, r.Headers.UnknownHeaderCount = ctypes.addressof(unknown), 1
        chunk = (_ffi.HTTP_DATA_CHUNK * 1)()
        self.keep.append(chunk)
        chunk[0].DataChunkType = _ffi.DataChunkType.FROM_MEMORY
        chunk[0].FromMemory.pBuffer, chunk[0].FromMemory.BufferLength = self._buf(b"body!"), 5
        r.pEntityChunks, r.EntityChunkCount = ctypes.addressof(chunk), 1
        addr = _ffi.SOCKADDR_IN()
        addr.sin_family = _ffi.AF_INET
        addr.sin_port[:] = [0x1F, 0x90]
        addr.sin_addr[:] = [127, 0, 0, 1]
        self.keep.append(addr)
        r.Address.pRemoteAddress = ctypes.addressof(addr)
        return r


def test_parse_request_copies_every_field_out() -> None:
    """Ids, context, verb, raw and cooked URL, headers, remote address and the copied body."""
    builder = RequestBuilder()
    request = parse_request(ctypes.addressof(builder.build()))
    assert (0x1122334455667788, 7, 21) == (
        request.request_id,
        request.connection_id,
        request.url_context,
    )
    assert ("POST", (1, 1), "/app/deep/y?q=1") == (request.method, request.version, request.raw_url)
    assert (
        "http://localhost:8080/app/deep/y?q=1",
        "localhost:8080",
        "/app/deep/y",
        "?q=1",
    ) == (request.full_url, request.host, request.path, request.query)
    assert (("Host", "localhost:8080"), ("X-Trace", "abc")) == request.headers
    assert ("127.0.0.1", 8080) == request.remote
    assert (b"body!", False) == (request.body, request.more_body)
    assert "abc" == request.header("x-trace")


def test_parse_request_reads_an_unknown_verb_and_the_more_body_flag() -> None:
    """Verb Unknown takes the method from pUnknownVerb; Flags bit 1 means more body to read."""
    builder = RequestBuilder()
    req = builder.build()
    req.Verb = _ffi.Verb.UNKNOWN
    verb = b"PURGE"
    buf = ctypes.create_string_buffer(verb)
    req.pUnknownVerb, req.UnknownVerbLength = ctypes.addressof(buf), len(verb)
    req.Flags = _ffi.HTTP_REQUEST_FLAG_MORE_ENTITY_BODY_EXISTS
    request = parse_request(ctypes.addressof(req))
    assert ("PURGE", True) == (request.method, request.more_body)


def test_parse_request_reads_an_ipv6_peer() -> None:
    """AF_INET6 is 23 on Windows; the address and port are decoded."""
    builder = RequestBuilder()
    req = builder.build()
    addr = _ffi.SOCKADDR_IN6()
    addr.sin6_family = _ffi.AF_INET6
    addr.sin6_port[:] = [0, 80]
    addr.sin6_addr[15] = 1
    req.Address.pRemoteAddress = ctypes.addressof(addr)
    assert ("::1", 80) == parse_request(ctypes.addressof(req)).remote


def test_build_response_lays_out_status_reason_headers_and_one_chunk() -> None:
    """Known headers go by id, others into the unknown array, the body into a FromMemory chunk."""
    prepared = build_response(
        201, "Created", {"Content-Type": "text/plain", "X-Route": "11"}, b"hello"
    )
    resp = prepared.struct
    assert (201, 1, 1) == (resp.StatusCode, resp.Version.MajorVersion, resp.Version.MinorVersion)
    assert b"Created" == ctypes.string_at(resp.pReason, resp.ReasonLength)
    content_type = resp.Headers.KnownHeaders[_ffi.HEADER_ID_CONTENT_TYPE]
    assert b"text/plain" == ctypes.string_at(content_type.pRawValue, content_type.RawValueLength)
    assert 1 == resp.Headers.UnknownHeaderCount
    unknown = _ffi.HTTP_UNKNOWN_HEADER.from_address(resp.Headers.pUnknownHeaders)
    assert (b"X-Route", b"11") == (
        ctypes.string_at(unknown.pName, unknown.NameLength),
        ctypes.string_at(unknown.pRawValue, unknown.RawValueLength),
    )
    chunk = _ffi.HTTP_DATA_CHUNK.from_address(resp.pEntityChunks)
    assert (1, _ffi.DataChunkType.FROM_MEMORY) == (resp.EntityChunkCount, chunk.DataChunkType)
    assert b"hello" == ctypes.string_at(chunk.FromMemory.pBuffer, chunk.FromMemory.BufferLength)


def test_build_response_without_body_has_no_chunks() -> None:
    """An empty body sends no entity chunk."""
    resp = build_response(204).struct
    assert (0, None) == (resp.EntityChunkCount, resp.pEntityChunks)


@pytest.mark.parametrize("status", [99, 1000])
def test_build_response_refuses_a_bad_status(status: int) -> None:
    """Statuses are three digits."""
    with pytest.raises(ValueError, match="status"):
        build_response(status)


def _text(pointer: int | None, length: int) -> bytes:
    assert pointer
    return ctypes.string_at(pointer, length)


def _unknown(resp: _ffi.HTTP_RESPONSE_V2) -> list[tuple[bytes, bytes]]:
    count = resp.Headers.UnknownHeaderCount
    if not count:
        return []
    array = (_ffi.HTTP_UNKNOWN_HEADER * count).from_address(resp.Headers.pUnknownHeaders)
    return [(_text(h.pName, h.NameLength), _text(h.pRawValue, h.RawValueLength)) for h in array]


def _multiple(resp: _ffi.HTTP_RESPONSE_V2) -> list[tuple[int, int, list[bytes]]]:
    """(header id, flags, values) of each HTTP_MULTIPLE_KNOWN_HEADERS response info."""
    out = []
    if not resp.ResponseInfoCount:
        return out
    infos = (_ffi.HTTP_RESPONSE_INFO * resp.ResponseInfoCount).from_address(resp.pResponseInfo)
    for info in infos:
        assert _ffi.HTTP_RESPONSE_INFO_TYPE_MULTIPLE_KNOWN_HEADERS == info.Type
        assert ctypes.sizeof(_ffi.HTTP_MULTIPLE_KNOWN_HEADERS) == info.Length
        multi = _ffi.HTTP_MULTIPLE_KNOWN_HEADERS.from_address(info.pInfo)
        values = (_ffi.HTTP_KNOWN_HEADER * multi.KnownHeaderCount).from_address(multi.KnownHeaders)
        out.append(
            (multi.HeaderId, multi.Flags, [_text(v.pRawValue, v.RawValueLength) for v in values])
        )
    return out


SET_COOKIE = _ffi.RESPONSE_HEADER_NAMES.index("Set-Cookie")
WWW_AUTHENTICATE = _ffi.RESPONSE_HEADER_NAMES.index("WWW-Authenticate")


def test_a_repeated_known_header_goes_out_as_multiple_known_headers() -> None:
    """Two Set-Cookie fields: every value in one HTTP_MULTIPLE_KNOWN_HEADERS, the slot left empty
    (http.sys would send a slot value as well); a single known header keeps its slot."""
    cookie = "a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT"
    prepared = build_response(
        200, headers=[("Set-Cookie", cookie), ("Server", "x"), ("set-cookie", "b=2")]
    )
    resp = prepared.struct
    assert not resp.Headers.KnownHeaders[SET_COOKIE].pRawValue
    order = _ffi.HTTP_RESPONSE_INFO_FLAGS_PRESERVE_ORDER
    assert [(SET_COOKIE, order, [cookie.encode(), b"b=2"])] == _multiple(resp)
    server = resp.Headers.KnownHeaders[_ffi.HEADER_ID_SERVER]
    assert b"x" == _text(server.pRawValue, server.RawValueLength)
    assert [] == _unknown(resp)


def test_a_known_header_that_can_be_folded_is_refused_twice() -> None:
    """One slot, one value: a second Server or Content-Length is a caller's mistake."""
    with pytest.raises(ValueError, match="twice"):
        build_response(200, headers=[("Server", "a"), ("server", "b")])


def test_repeated_authentication_challenges_keep_their_order() -> None:
    """WWW-Authenticate repeats carry the preserve-order flag (documented for that header)."""
    prepared = build_response(  # held: its buffers back the struct's pointers
        401, headers=[("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "Basic realm=x")]
    )
    resp = prepared.struct
    assert [
        (
            WWW_AUTHENTICATE,
            _ffi.HTTP_RESPONSE_INFO_FLAGS_PRESERVE_ORDER,
            [b"Negotiate", b"Basic realm=x"],
        )
    ] == _multiple(resp)


def test_without_response_info_repeats_go_out_as_unknown_headers_of_the_same_name() -> None:
    """Wine 8 ignores response info: the first value takes the slot, the others follow as
    unknown headers named as given (Wine writes both verbatim)."""
    prepared = build_response(
        200,
        headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Set-Cookie", "c=3")],
        multiple_known_headers=False,
    )
    resp = prepared.struct
    slot = resp.Headers.KnownHeaders[SET_COOKIE]
    assert b"a=1" == _text(slot.pRawValue, slot.RawValueLength)
    assert [(b"Set-Cookie", b"b=2"), (b"Set-Cookie", b"c=3")] == _unknown(resp)
    assert 0 == resp.ResponseInfoCount
