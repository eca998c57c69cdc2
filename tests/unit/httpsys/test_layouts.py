"""The fixed-width ctypes structures have the x64 sizes and offsets of notes/httpsys-backend.md 1.3.

These run on Linux: with c_uint32/c_uint16/c_uint64 aliases the LP64 layout equals Windows' LLP64 one,
which is the whole point of never using ctypes.wintypes for integers.
"""

from __future__ import annotations

import ctypes

import pytest

from orchestrator.httpapi import _ffi

SIZES = [
    (_ffi.HTTPAPI_VERSION, 4),
    (_ffi.HTTP_VERSION, 4),
    (_ffi.HTTP_PROPERTY_FLAGS, 4),
    (_ffi.HTTP_STATE_INFO, 8),
    (_ffi.HTTP_CONNECTION_LIMIT_INFO, 8),
    (_ffi.HTTP_BANDWIDTH_LIMIT_INFO, 8),
    (_ffi.HTTP_LISTEN_ENDPOINT_INFO, 8),
    (_ffi.HTTP_BINDING_INFO, 16),
    (_ffi.HTTP_QOS_SETTING_INFO, 16),
    (_ffi.HTTP_FLOWRATE_INFO, 16),
    (_ffi.HTTP_TIMEOUT_LIMIT_INFO, 20),
    (_ffi.HTTP_KNOWN_HEADER, 16),
    (_ffi.HTTP_UNKNOWN_HEADER, 24),
    (_ffi.HTTP_COOKED_URL, 40),
    (_ffi.HTTP_DATA_CHUNK, 32),
    (_ffi.HTTP_REQUEST_HEADERS, 688),
    (_ffi.HTTP_RESPONSE_HEADERS, 512),
    (_ffi.HTTP_REQUEST_V2, 864),
    (_ffi.HTTP_RESPONSE_V2, 568),
    (_ffi.SECURITY_ATTRIBUTES, 24),
    (_ffi.HTTP_DELEGATE_REQUEST_PROPERTY_INFO, 16),
    (_ffi.HTTP_SERVICE_CONFIG_URLACL_SET, 16),
    (_ffi.HTTP_TRANSPORT_ADDRESS, 16),
    (_ffi.HTTP_BYTE_RANGE, 16),
    (_ffi.HTTP_REQUEST_INFO, 16),
    (_ffi.HTTP_RESPONSE_INFO, 16),
    (_ffi.HTTP_MULTIPLE_KNOWN_HEADERS, 24),
    (_ffi.HTTP_CACHE_POLICY, 8),
    (_ffi.OVERLAPPED, 32),
    (_ffi.SOCKADDR_IN, 16),
    (_ffi.SOCKADDR_IN6, 28),
]

OFFSETS = [
    (_ffi.HTTP_STATE_INFO, {"Flags": 0, "State": 4}),
    (_ffi.HTTP_CONNECTION_LIMIT_INFO, {"Flags": 0, "MaxConnections": 4}),
    (_ffi.HTTP_BANDWIDTH_LIMIT_INFO, {"Flags": 0, "MaxBandwidth": 4}),
    (_ffi.HTTP_LISTEN_ENDPOINT_INFO, {"Flags": 0, "EnableSharing": 4}),
    (_ffi.HTTP_BINDING_INFO, {"Flags": 0, "RequestQueueHandle": 8}),
    (_ffi.HTTP_QOS_SETTING_INFO, {"QosType": 0, "QosSetting": 8}),
    (_ffi.HTTP_FLOWRATE_INFO, {"MaxBandwidth": 4, "MaxPeakBandwidth": 8, "BurstSize": 12}),
    (
        _ffi.HTTP_TIMEOUT_LIMIT_INFO,
        {
            "Flags": 0,
            "EntityBody": 4,
            "DrainEntityBody": 6,
            "RequestQueue": 8,
            "IdleConnection": 10,
            "HeaderWait": 12,
            "MinSendRate": 16,
        },
    ),
    (_ffi.HTTP_KNOWN_HEADER, {"RawValueLength": 0, "pRawValue": 8}),
    (
        _ffi.HTTP_UNKNOWN_HEADER,
        {"NameLength": 0, "RawValueLength": 2, "pName": 8, "pRawValue": 16},
    ),
    (
        _ffi.HTTP_COOKED_URL,
        {
            "FullUrlLength": 0,
            "HostLength": 2,
            "AbsPathLength": 4,
            "QueryStringLength": 6,
            "pFullUrl": 8,
            "pHost": 16,
            "pAbsPath": 24,
            "pQueryString": 32,
        },
    ),
    (
        _ffi.HTTP_REQUEST_HEADERS,
        {
            "UnknownHeaderCount": 0,
            "pUnknownHeaders": 8,
            "TrailerCount": 16,
            "pTrailers": 24,
            "KnownHeaders": 32,
        },
    ),
    (
        _ffi.HTTP_RESPONSE_HEADERS,
        {
            "UnknownHeaderCount": 0,
            "pUnknownHeaders": 8,
            "TrailerCount": 16,
            "pTrailers": 24,
            "KnownHeaders": 32,
        },
    ),
    (
        _ffi.HTTP_REQUEST_V2,
        {
            "Flags": 0,
            "ConnectionId": 8,
            "RequestId": 16,
            "UrlContext": 24,
            "Version": 32,
            "Verb": 36,
            "UnknownVerbLength": 40,
            "RawUrlLength": 42,
            "pUnknownVerb": 48,
            "pRawUrl": 56,
            "CookedUrl": 64,
            "Address": 104,
            "Headers": 120,
            "BytesReceived": 808,
            "EntityChunkCount": 816,
            "pEntityChunks": 824,
            "RawConnectionId": 832,
            "pSslInfo": 840,
            "RequestInfoCount": 848,
            "pRequestInfo": 856,
        },
    ),
    (
        _ffi.HTTP_RESPONSE_V2,
        {
            "Flags": 0,
            "Version": 4,
            "StatusCode": 8,
            "ReasonLength": 10,
            "pReason": 16,
            "Headers": 24,
            "EntityChunkCount": 536,
            "pEntityChunks": 544,
            "ResponseInfoCount": 552,
            "pResponseInfo": 560,
        },
    ),
    (_ffi.SECURITY_ATTRIBUTES, {"nLength": 0, "lpSecurityDescriptor": 8, "bInheritHandle": 16}),
    (
        _ffi.HTTP_DELEGATE_REQUEST_PROPERTY_INFO,
        {"PropertyId": 0, "PropertyInfoLength": 4, "PropertyInfo": 8},
    ),
    (_ffi.HTTP_DATA_CHUNK, {"DataChunkType": 0, "u": 8}),
    (_ffi.HTTP_RESPONSE_INFO, {"Type": 0, "Length": 4, "pInfo": 8}),
    (
        _ffi.HTTP_MULTIPLE_KNOWN_HEADERS,
        {"HeaderId": 0, "Flags": 4, "KnownHeaderCount": 8, "KnownHeaders": 16},
    ),
]


@pytest.mark.parametrize(("struct", "size"), SIZES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_struct_has_the_x64_size(struct: type[ctypes.Structure], size: int) -> None:
    """Each structure is exactly as large as its x64 C definition."""
    assert size == ctypes.sizeof(struct)


@pytest.mark.parametrize(
    ("struct", "offsets"), OFFSETS, ids=lambda v: getattr(v, "__name__", "offsets")
)
def test_struct_fields_sit_at_the_x64_offsets(
    struct: type[ctypes.Structure], offsets: dict[str, int]
) -> None:
    """Every listed field starts where the C compiler puts it on x64."""
    actual = {name: getattr(struct, name).offset for name in offsets}
    assert offsets == actual


def test_struct_size_table_matches_the_structs() -> None:
    """_ffi.STRUCT_SIZES (the module's own record of section 1.3) agrees with ctypes."""
    assert dict(_ffi.STRUCT_SIZES) == {s: ctypes.sizeof(s) for s in _ffi.STRUCT_SIZES}


@pytest.mark.parametrize(
    ("member", "offset"),
    [
        ("FromMemory.pBuffer", 8),
        ("FromMemory.BufferLength", 16),
        ("FromFileHandle.ByteRange", 8),
        ("FromFileHandle.FileHandle", 24),
        ("FromFragmentCache.pFragmentName", 16),
        ("Trailers.pTrailers", 16),
    ],
)
def test_data_chunk_union_members_sit_at_their_offsets(member: str, offset: int) -> None:
    """The chunk union starts at 8, so FromMemory's buffer is at 8 and its length at 16."""
    chunk = _ffi.HTTP_DATA_CHUNK()
    outer, inner = member.split(".")
    part = getattr(chunk, outer)
    base = ctypes.addressof(part) - ctypes.addressof(chunk)
    assert offset == base + getattr(type(part), inner).offset


def test_known_header_arrays_hold_41_request_and_30_response_headers() -> None:
    """HttpHeaderRequestMaximum is 41 and HttpHeaderResponseMaximum is 30."""
    known = ctypes.sizeof(_ffi.HTTP_KNOWN_HEADER)
    assert (41, 30) == (
        _ffi.HTTP_REQUEST_HEADERS.KnownHeaders.size // known,
        _ffi.HTTP_RESPONSE_HEADERS.KnownHeaders.size // known,
    )
    assert (41, 30) == (len(_ffi.REQUEST_HEADER_NAMES), len(_ffi.RESPONSE_HEADER_NAMES))


@pytest.mark.parametrize(
    ("table", "name", "header_id"),
    [
        (_ffi.REQUEST_HEADER_NAMES, "Allow", 10),
        (_ffi.REQUEST_HEADER_NAMES, "Content-Length", 11),
        (_ffi.REQUEST_HEADER_NAMES, "Content-Type", 12),
        (_ffi.REQUEST_HEADER_NAMES, "Host", 28),
        (_ffi.REQUEST_HEADER_NAMES, "User-Agent", 40),
        (_ffi.RESPONSE_HEADER_NAMES, "Content-Type", 12),
        (_ffi.RESPONSE_HEADER_NAMES, "Retry-After", 25),
        (_ffi.RESPONSE_HEADER_NAMES, "Server", 26),
    ],
)
def test_header_ids_match_the_header_enum(
    table: tuple[str, ...], name: str, header_id: int
) -> None:
    """The header name tables are indexed by HTTP_HEADER_ID."""
    assert header_id == table.index(name)


def test_enum_values_match_the_sdk() -> None:
    """Spot checks of the enums whose values cross the ABI."""
    assert 7 == _ffi.ServerProperty.BINDING
    assert 16 == _ffi.ServerProperty.DELEGATION
    assert (4, 19) == (_ffi.Verb.GET, _ffi.Verb.SEARCH)
    assert (0, 4) == (_ffi.DataChunkType.FROM_MEMORY, _ffi.DataChunkType.TRAILERS)
    assert (0, 1, 2) == tuple(_ffi.Verbosity503)
    assert (0, 1) == tuple(_ffi.EnabledState)


def test_property_flags_present_is_one_bit_of_a_ulong() -> None:
    """HTTP_PROPERTY_FLAGS{Present=1} is the 4-byte value 1."""
    assert b"\x01\x00\x00\x00" == bytes(_ffi.HTTP_PROPERTY_FLAGS(1))
