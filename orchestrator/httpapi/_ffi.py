"""The ctypes layer over ``httpapi.dll``, ``advapi32.dll``, ``kernel32.dll`` and ``ntdll.dll``.

Owns: the fixed-width type aliases, every HTTP Server API v2 structure the controller and the worker use
(x64 layouts, notes/httpsys-backend.md section 1.3), the enums and flag constants, ``ErrorCode`` and
``HttpApiError``, the lazily loaded prototypes (``HttpApi``, ``load()``), the SID helpers and the Wine
detector. This is the ONLY module of the package that touches ``ctypes.WinDLL``/``windll``, and it
does so only inside functions guarded by ``sys.platform == "win32"``: importing it on Linux defines the
structures (so their layouts are unit-tested there) and loads nothing.
Must not import anything from ``orchestrator`` (it is the bottom of ``orchestrator.httpapi``) and never
``ctypes.wintypes`` for integer fields: ``wintypes.ULONG``/``DWORD``/``BOOL`` are C ``long``, 4 bytes on
Windows but 8 on Linux, which would make the Linux layout tests meaningless.
"""

from __future__ import annotations

import ctypes
import enum
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

# --- fixed-width aliases (LLP64 sizes on every platform) ---------------------------------------
ULONG = ctypes.c_uint32
USHORT = ctypes.c_uint16
ULONGLONG = ctypes.c_uint64
BOOL = ctypes.c_int32
ENUM = ctypes.c_int32
HANDLE = ctypes.c_void_p
PVOID = ctypes.c_void_p
BOOLEAN = ctypes.c_uint8
PCSTR = ctypes.c_char_p
PCWSTR = ctypes.c_wchar_p

# HTTP_SERVER_SESSION_ID, HTTP_URL_GROUP_ID, HTTP_REQUEST_ID, HTTP_CONNECTION_ID, HTTP_URL_CONTEXT
HTTP_OPAQUE_ID = ULONGLONG

# --- flags ----------------------------------------------------------------------------------------
HTTP_INITIALIZE_SERVER: Final = 0x1
HTTP_INITIALIZE_CONFIG: Final = 0x2
HTTP_DEMAND_CBT: Final = 0x4

HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING: Final = 0x1
HTTP_CREATE_REQUEST_QUEUE_FLAG_CONTROLLER: Final = 0x2
HTTP_CREATE_REQUEST_QUEUE_FLAG_DELEGATION: Final = 0x8

HTTP_RECEIVE_REQUEST_FLAG_COPY_BODY: Final = 0x1
HTTP_RECEIVE_REQUEST_FLAG_FLUSH_BODY: Final = 0x2
HTTP_RECEIVE_REQUEST_ENTITY_BODY_FLAG_FILL_BUFFER: Final = 0x1

HTTP_SEND_RESPONSE_FLAG_DISCONNECT: Final = 0x1
HTTP_SEND_RESPONSE_FLAG_MORE_DATA: Final = 0x2
HTTP_SEND_RESPONSE_FLAG_BUFFER_DATA: Final = 0x4
HTTP_SEND_RESPONSE_FLAG_ENABLE_NAGLING: Final = 0x8
HTTP_SEND_RESPONSE_FLAG_PROCESS_RANGES: Final = 0x20
HTTP_SEND_RESPONSE_FLAG_OPAQUE: Final = 0x40
HTTP_SEND_RESPONSE_FLAG_GOAWAY: Final = 0x100

HTTP_URL_FLAG_REMOVE_ALL: Final = 0x1
HTTP_REQUEST_FLAG_MORE_ENTITY_BODY_EXISTS: Final = 0x1
HTTP_LIMIT_INFINITE: Final = 0xFFFFFFFF
HTTP_MIN_ALLOWED_BANDWIDTH_THROTTLING_RATE: Final = 1024
HTTP_MAX_QUEUE_LENGTH: Final = 0x7FFFFFFF
SDDL_REVISION_1: Final = 1
MAX_PATH: Final = 260

AF_INET: Final = 2
AF_INET6: Final = 23  # the Windows value; Linux's 10 never appears in an HTTP_REQUEST


# --- enums ----------------------------------------------------------------------------------------
class ServerProperty(enum.IntEnum):
    """``HTTP_SERVER_PROPERTY``: which property a Set/Query call addresses."""

    AUTHENTICATION = 0
    LOGGING = 1
    QOS = 2
    TIMEOUTS = 3
    QUEUE_LENGTH = 4
    STATE = 5
    VERBOSITY_503 = 6
    BINDING = 7
    EXTENDED_AUTHENTICATION = 8
    LISTEN_ENDPOINT = 9
    CHANNEL_BIND = 10
    PROTECTION_LEVEL = 11
    DELEGATION = 16


class EnabledState(enum.IntEnum):
    """``HTTP_ENABLED_STATE``."""

    ACTIVE = 0
    INACTIVE = 1


class Verbosity503(enum.IntEnum):
    """``HTTP_503_RESPONSE_VERBOSITY``: Basic resets the connection, Limited/Full send a 503."""

    BASIC = 0
    LIMITED = 1
    FULL = 2


class QosSettingType(enum.IntEnum):
    """``HTTP_QOS_SETTING_TYPE``."""

    BANDWIDTH = 0
    CONNECTION_LIMIT = 1
    FLOW_RATE = 2


class ServiceConfigId(enum.IntEnum):
    """``HTTP_SERVICE_CONFIG_ID`` (machine configuration, ``netsh http``)."""

    SSL_CERT_INFO = 0
    IP_LISTEN_LIST = 1
    URL_ACL_INFO = 2
    TIMEOUT = 3


class DataChunkType(enum.IntEnum):
    """``HTTP_DATA_CHUNK_TYPE``."""

    FROM_MEMORY = 0
    FROM_FILE_HANDLE = 1
    FROM_FRAGMENT_CACHE = 2
    FROM_FRAGMENT_CACHE_EX = 3
    TRAILERS = 4


class Verb(enum.IntEnum):
    """``HTTP_VERB``; ``UNKNOWN`` means the method is in ``pUnknownVerb``."""

    UNPARSED = 0
    UNKNOWN = 1
    INVALID = 2
    OPTIONS = 3
    GET = 4
    HEAD = 5
    POST = 6
    PUT = 7
    DELETE = 8
    TRACE = 9
    CONNECT = 10
    TRACK = 11
    MOVE = 12
    COPY = 13
    PROPFIND = 14
    PROPPATCH = 15
    MKCOL = 16
    LOCK = 17
    UNLOCK = 18
    SEARCH = 19


class DelegateRequestPropertyId(enum.IntEnum):
    """``HTTP_DELEGATE_REQUEST_PROPERTY_ID``."""

    RESERVED = 0
    DELEGATE_URL = 1


class FeatureId(enum.IntEnum):
    """``HTTP_FEATURE_ID`` for ``HttpIsFeatureSupported``."""

    UNKNOWN = 0
    RESPONSE_TRAILERS = 1
    API_TIMINGS = 2
    DELEGATE_EX = 3
    HTTP3 = 4


class SidNameUse(enum.IntEnum):
    """``SID_NAME_USE`` as returned by ``LookupAccountNameW``."""

    USER = 1
    GROUP = 2
    DOMAIN = 3
    ALIAS = 4
    WELL_KNOWN_GROUP = 5
    DELETED_ACCOUNT = 6
    INVALID = 7
    UNKNOWN = 8
    COMPUTER = 9
    LABEL = 10
    LOGON_SESSION = 11


#: ``HTTP_HEADER_ID`` names of request headers, index = id (``HttpHeaderRequestMaximum`` = 41).
REQUEST_HEADER_NAMES: Final[tuple[str, ...]] = (
    "Cache-Control",
    "Connection",
    "Date",
    "Keep-Alive",
    "Pragma",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
    "Via",
    "Warning",
    "Allow",
    "Content-Length",
    "Content-Type",
    "Content-Encoding",
    "Content-Language",
    "Content-Location",
    "Content-MD5",
    "Content-Range",
    "Expires",
    "Last-Modified",
    "Accept",
    "Accept-Charset",
    "Accept-Encoding",
    "Accept-Language",
    "Authorization",
    "Cookie",
    "Expect",
    "From",
    "Host",
    "If-Match",
    "If-Modified-Since",
    "If-None-Match",
    "If-Range",
    "If-Unmodified-Since",
    "Max-Forwards",
    "Proxy-Authorization",
    "Referer",
    "Range",
    "TE",
    "Translate",
    "User-Agent",
)
#: Response header ids: 0..19 are shared with requests, then 20..29 (``HttpHeaderResponseMaximum`` = 30).
RESPONSE_HEADER_NAMES: Final[tuple[str, ...]] = (
    *REQUEST_HEADER_NAMES[:20],
    "Accept-Ranges",
    "Age",
    "ETag",
    "Location",
    "Proxy-Authenticate",
    "Retry-After",
    "Server",
    "Set-Cookie",
    "Vary",
    "WWW-Authenticate",
)
HTTP_HEADER_REQUEST_MAXIMUM: Final = len(REQUEST_HEADER_NAMES)
HTTP_HEADER_RESPONSE_MAXIMUM: Final = len(RESPONSE_HEADER_NAMES)
HEADER_ID_HOST: Final = REQUEST_HEADER_NAMES.index("Host")
HEADER_ID_CONTENT_TYPE: Final = REQUEST_HEADER_NAMES.index("Content-Type")
HEADER_ID_CONTENT_LENGTH: Final = REQUEST_HEADER_NAMES.index("Content-Length")
HEADER_ID_RETRY_AFTER: Final = RESPONSE_HEADER_NAMES.index("Retry-After")
HEADER_ID_SERVER: Final = RESPONSE_HEADER_NAMES.index("Server")


class ErrorCode(enum.IntEnum):
    """The Win32 error codes the HTTP Server API returns (notes section 1.6)."""

    NO_ERROR = 0
    ERROR_FILE_NOT_FOUND = 2
    ERROR_PATH_NOT_FOUND = 3  # Wine: the http.sys driver is not running (see HttpInitialize)
    ERROR_ACCESS_DENIED = 5
    ERROR_INVALID_HANDLE = 6
    ERROR_SHARING_VIOLATION = 32
    ERROR_HANDLE_EOF = 38
    ERROR_NOT_SUPPORTED = 50
    ERROR_NETNAME_DELETED = 64
    ERROR_INVALID_PARAMETER = 87
    ERROR_CALL_NOT_IMPLEMENTED = 120
    ERROR_INSUFFICIENT_BUFFER = 122
    ERROR_INVALID_NAME = 123
    ERROR_ALREADY_EXISTS = 183
    ERROR_MORE_DATA = 234
    ERROR_OPERATION_ABORTED = 995
    ERROR_IO_INCOMPLETE = 996
    ERROR_IO_PENDING = 997
    ERROR_DLL_INIT_FAILED = 1114
    ERROR_NOT_FOUND = 1168
    ERROR_CONNECTION_INVALID = 1229
    ERROR_CONNECTION_ABORTED = 1236
    ERROR_REVISION_MISMATCH = 1306
    ERROR_NONE_MAPPED = 1332
    ERROR_INVALID_ACL = 1336
    ERROR_INVALID_SID = 1337
    ERROR_INVALID_SECURITY_DESCR = 1338
    ERROR_OBJECT_NO_LONGER_EXISTS = 6807


def error_name(code: int) -> str:
    """The symbolic name of a Win32 error code (``ERROR_<n>`` when it is not in ``ErrorCode``)."""
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"ERROR_{code}"


class HttpApiError(OSError):
    """A Win32 API call returned an error code.

    An ``OSError`` (STYLE.md section 7) that also carries the code, its symbolic name and the function,
    so that callers branch on ``exc.code == ErrorCode.ERROR_ALREADY_EXISTS`` rather than on text.
    """

    def __init__(self, code: int, function: str) -> None:
        self.code = int(code)
        self.name = error_name(self.code)
        self.function = function
        super().__init__(f"{function} failed: {self.name} ({self.code})")
        # What ctypes.WinError() would carry on Windows; set on Linux too so tests see the same.
        self.winerror = self.code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.function))


class UnsupportedPlatformError(RuntimeError):
    """The Windows libraries were asked for on a platform that has none."""


# --- structures (section 1.2 and 1.3; sizes asserted in tests/unit/httpsys) -------------------------
class HTTPAPI_VERSION(ctypes.Structure):
    """``{USHORT Major, Minor}``, 4 bytes, passed BY VALUE; always 2.0 here."""

    _fields_ = (("HttpApiMajorVersion", USHORT), ("HttpApiMinorVersion", USHORT))


class HTTP_VERSION(ctypes.Structure):
    """The HTTP protocol version of a request or response (1.1 is ``{1, 1}``)."""

    _fields_ = (("MajorVersion", USHORT), ("MinorVersion", USHORT))


class HTTP_PROPERTY_FLAGS(ctypes.Structure):
    """``{ULONG Present:1}``: 1 sets the property, 0 clears it."""

    _fields_ = (("Present", ULONG, 1),)


class HTTP_STATE_INFO(ctypes.Structure):
    """Session/URL group ``HttpServerStateProperty`` payload (a queue takes a bare enum)."""

    _fields_ = (("Flags", HTTP_PROPERTY_FLAGS), ("State", ENUM))


class HTTP_BINDING_INFO(ctypes.Structure):
    """``HttpServerBindingProperty``: binds a URL group to a request queue."""

    _fields_ = (("Flags", HTTP_PROPERTY_FLAGS), ("RequestQueueHandle", HANDLE))


class HTTP_QOS_SETTING_INFO(ctypes.Structure):
    """``HttpServerQosProperty``: a type tag and a pointer to the limit struct."""

    _fields_ = (("QosType", ENUM), ("QosSetting", PVOID))


class HTTP_CONNECTION_LIMIT_INFO(ctypes.Structure):
    """QoS connection limit (URL groups only); ``HTTP_LIMIT_INFINITE`` for none."""

    _fields_ = (("Flags", HTTP_PROPERTY_FLAGS), ("MaxConnections", ULONG))


class HTTP_BANDWIDTH_LIMIT_INFO(ctypes.Structure):
    """QoS bandwidth limit in bytes per second (at least 1024)."""

    _fields_ = (("Flags", HTTP_PROPERTY_FLAGS), ("MaxBandwidth", ULONG))


class HTTP_FLOWRATE_INFO(ctypes.Structure):
    """QoS flow rate (``HttpQosSettingTypeFlowRate``)."""

    _fields_ = (
        ("Flags", HTTP_PROPERTY_FLAGS),
        ("MaxBandwidth", ULONG),
        ("MaxPeakBandwidth", ULONG),
        ("BurstSize", ULONG),
    )


class HTTP_TIMEOUT_LIMIT_INFO(ctypes.Structure):
    """``HttpServerTimeoutsProperty``: five USHORT timers in seconds, then MinSendRate in B/s."""

    _fields_ = (
        ("Flags", HTTP_PROPERTY_FLAGS),
        ("EntityBody", USHORT),
        ("DrainEntityBody", USHORT),
        ("RequestQueue", USHORT),
        ("IdleConnection", USHORT),
        ("HeaderWait", USHORT),
        ("MinSendRate", ULONG),
    )


class HTTP_LISTEN_ENDPOINT_INFO(ctypes.Structure):
    """``HttpServerListenEndpointProperty`` (sessions)."""

    _fields_ = (("Flags", HTTP_PROPERTY_FLAGS), ("EnableSharing", BOOLEAN))


class HTTP_KNOWN_HEADER(ctypes.Structure):
    """A known header's value: byte length and ``char*`` (not NUL-terminated by contract)."""

    _fields_ = (("RawValueLength", USHORT), ("pRawValue", PVOID))


class HTTP_UNKNOWN_HEADER(ctypes.Structure):
    """A header without an id: name and value as byte-counted ``char*``."""

    _fields_ = (
        ("NameLength", USHORT),
        ("RawValueLength", USHORT),
        ("pName", PVOID),
        ("pRawValue", PVOID),
    )


class HTTP_COOKED_URL(ctypes.Structure):
    """The parsed request URL: UTF-16 pieces with byte lengths."""

    _fields_ = (
        ("FullUrlLength", USHORT),
        ("HostLength", USHORT),
        ("AbsPathLength", USHORT),
        ("QueryStringLength", USHORT),
        ("pFullUrl", PVOID),
        ("pHost", PVOID),
        ("pAbsPath", PVOID),
        ("pQueryString", PVOID),
    )


class HTTP_TRANSPORT_ADDRESS(ctypes.Structure):
    """Pointers to the remote and local ``SOCKADDR``."""

    _fields_ = (("pRemoteAddress", PVOID), ("pLocalAddress", PVOID))


class HTTP_BYTE_RANGE(ctypes.Structure):
    """``{ULARGE_INTEGER StartingOffset, Length}``."""

    _fields_ = (("StartingOffset", ULONGLONG), ("Length", ULONGLONG))


class _FromMemory(ctypes.Structure):
    _fields_ = (("pBuffer", PVOID), ("BufferLength", ULONG))


class _FromFileHandle(ctypes.Structure):
    _fields_ = (("ByteRange", HTTP_BYTE_RANGE), ("FileHandle", HANDLE))


class _FromFragmentCache(ctypes.Structure):
    _fields_ = (("FragmentNameLength", USHORT), ("pFragmentName", PVOID))


class _FromFragmentCacheEx(ctypes.Structure):
    _fields_ = (("ByteRange", HTTP_BYTE_RANGE), ("pFragmentName", PVOID))


class _Trailers(ctypes.Structure):
    _fields_ = (("TrailerCount", USHORT), ("pTrailers", PVOID))


class _DataChunkUnion(ctypes.Union):
    _fields_ = (
        ("FromMemory", _FromMemory),
        ("FromFileHandle", _FromFileHandle),
        ("FromFragmentCache", _FromFragmentCache),
        ("FromFragmentCacheEx", _FromFragmentCacheEx),
        ("Trailers", _Trailers),
    )


class HTTP_DATA_CHUNK(ctypes.Structure):
    """A body piece; the union sits at offset 8 (x64 pointer alignment)."""

    _anonymous_ = ("u",)
    _fields_ = (("DataChunkType", ENUM), ("u", _DataChunkUnion))


class HTTP_REQUEST_HEADERS(ctypes.Structure):
    """Unknown headers, trailers (unused by http.sys), then the 41 known request headers."""

    _fields_ = (
        ("UnknownHeaderCount", USHORT),
        ("pUnknownHeaders", PVOID),
        ("TrailerCount", USHORT),
        ("pTrailers", PVOID),
        ("KnownHeaders", HTTP_KNOWN_HEADER * HTTP_HEADER_REQUEST_MAXIMUM),
    )


class HTTP_RESPONSE_HEADERS(ctypes.Structure):
    """As ``HTTP_REQUEST_HEADERS`` with the 30 known response headers."""

    _fields_ = (
        ("UnknownHeaderCount", USHORT),
        ("pUnknownHeaders", PVOID),
        ("TrailerCount", USHORT),
        ("pTrailers", PVOID),
        ("KnownHeaders", HTTP_KNOWN_HEADER * HTTP_HEADER_RESPONSE_MAXIMUM),
    )


class HTTP_REQUEST_INFO(ctypes.Structure):
    """One extra piece of request information (authentication, TLS, ...)."""

    _fields_ = (("InfoType", ENUM), ("InfoLength", ULONG), ("pInfo", PVOID))


class HTTP_RESPONSE_INFO(ctypes.Structure):
    """One extra piece of response information."""

    _fields_ = (("Type", ENUM), ("Length", ULONG), ("pInfo", PVOID))


#: ``HTTP_RESPONSE_INFO.Type``: ``pInfo`` is an ``HTTP_MULTIPLE_KNOWN_HEADERS``.
HTTP_RESPONSE_INFO_TYPE_MULTIPLE_KNOWN_HEADERS: Final = 0
#: ``HTTP_MULTIPLE_KNOWN_HEADERS.Flags``: keep the values' order (documented for WWW-Authenticate).
HTTP_RESPONSE_INFO_FLAGS_PRESERVE_ORDER: Final = 0x1


class HTTP_MULTIPLE_KNOWN_HEADERS(ctypes.Structure):
    """Every value of one known response header that is sent more than once (``Set-Cookie``), 24
    bytes on x64; its ``KnownHeaders`` slot in ``HTTP_RESPONSE_HEADERS`` stays empty."""

    _fields_ = (
        ("HeaderId", ENUM),
        ("Flags", ULONG),
        ("KnownHeaderCount", USHORT),
        ("KnownHeaders", PVOID),
    )


class HTTP_REQUEST_V2(ctypes.Structure):
    """``HTTP_REQUEST_V2`` (= V1 plus request info), 864 bytes on x64."""

    _fields_ = (
        ("Flags", ULONG),
        ("ConnectionId", HTTP_OPAQUE_ID),
        ("RequestId", HTTP_OPAQUE_ID),
        ("UrlContext", HTTP_OPAQUE_ID),
        ("Version", HTTP_VERSION),
        ("Verb", ENUM),
        ("UnknownVerbLength", USHORT),
        ("RawUrlLength", USHORT),
        ("pUnknownVerb", PVOID),
        ("pRawUrl", PVOID),
        ("CookedUrl", HTTP_COOKED_URL),
        ("Address", HTTP_TRANSPORT_ADDRESS),
        ("Headers", HTTP_REQUEST_HEADERS),
        ("BytesReceived", ULONGLONG),
        ("EntityChunkCount", USHORT),
        ("pEntityChunks", PVOID),
        ("RawConnectionId", HTTP_OPAQUE_ID),
        ("pSslInfo", PVOID),
        ("RequestInfoCount", USHORT),
        ("pRequestInfo", PVOID),
    )


class HTTP_RESPONSE_V2(ctypes.Structure):
    """``HTTP_RESPONSE_V2`` (= V1 plus response info), 568 bytes on x64."""

    _fields_ = (
        ("Flags", ULONG),
        ("Version", HTTP_VERSION),
        ("StatusCode", USHORT),
        ("ReasonLength", USHORT),
        ("pReason", PVOID),
        ("Headers", HTTP_RESPONSE_HEADERS),
        ("EntityChunkCount", USHORT),
        ("pEntityChunks", PVOID),
        ("ResponseInfoCount", USHORT),
        ("pResponseInfo", PVOID),
    )


class HTTP_CACHE_POLICY(ctypes.Structure):
    """``{HTTP_CACHE_POLICY_TYPE Policy; ULONG SecondsToLive}``."""

    _fields_ = (("Policy", ENUM), ("SecondsToLive", ULONG))


class SECURITY_ATTRIBUTES(ctypes.Structure):
    """``{DWORD nLength; LPVOID lpSecurityDescriptor; BOOL bInheritHandle}``, 24 bytes."""

    _fields_ = (("nLength", ULONG), ("lpSecurityDescriptor", PVOID), ("bInheritHandle", BOOL))


class HTTP_DELEGATE_REQUEST_PROPERTY_INFO(ctypes.Structure):
    """One property of ``HttpDelegateRequestEx`` (the delegate URL)."""

    _fields_ = (("PropertyId", ENUM), ("PropertyInfoLength", ULONG), ("PropertyInfo", PVOID))


class HTTP_SERVICE_CONFIG_URLACL_SET(ctypes.Structure):
    """``{PWSTR pUrlPrefix; PWSTR pStringSecurityDescriptor}``: the API form of ``netsh http add urlacl``."""

    _fields_ = (("pUrlPrefix", PCWSTR), ("pStringSecurityDescriptor", PCWSTR))


class OVERLAPPED(ctypes.Structure):
    """``OVERLAPPED`` (only ever passed as NULL by the synchronous paths)."""

    _fields_ = (
        ("Internal", ctypes.c_size_t),
        ("InternalHigh", ctypes.c_size_t),
        ("Offset", ULONG),
        ("OffsetHigh", ULONG),
        ("hEvent", HANDLE),
    )


class SOCKADDR_IN(ctypes.Structure):
    """IPv4 socket address; port and address in network byte order."""

    _fields_ = (
        ("sin_family", USHORT),
        ("sin_port", ctypes.c_uint8 * 2),
        ("sin_addr", ctypes.c_uint8 * 4),
        ("sin_zero", ctypes.c_uint8 * 8),
    )


class SOCKADDR_IN6(ctypes.Structure):
    """IPv6 socket address; port in network byte order."""

    _fields_ = (
        ("sin6_family", USHORT),
        ("sin6_port", ctypes.c_uint8 * 2),
        ("sin6_flowinfo", ULONG),
        ("sin6_addr", ctypes.c_uint8 * 16),
        ("sin6_scope_id", ULONG),
    )


def api_version() -> HTTPAPI_VERSION:
    """The only version this backend speaks: HTTP Server API 2.0."""
    return HTTPAPI_VERSION(2, 0)


# --- prototypes ---------------------------------------------------------------------------------
_P = ctypes.POINTER
_V = HTTPAPI_VERSION
_LPOVERLAPPED = _P(OVERLAPPED)

#: Every httpapi function the backend and the worker call: name -> argtypes. restype is ULONG.
HTTPAPI_PROTOTYPES: Final[dict[str, tuple[Any, ...]]] = {
    "HttpInitialize": (_V, ULONG, PVOID),
    "HttpTerminate": (ULONG, PVOID),
    "HttpCreateServerSession": (_V, _P(HTTP_OPAQUE_ID), ULONG),
    "HttpCloseServerSession": (HTTP_OPAQUE_ID,),
    "HttpSetServerSessionProperty": (HTTP_OPAQUE_ID, ENUM, PVOID, ULONG),
    "HttpQueryServerSessionProperty": (HTTP_OPAQUE_ID, ENUM, PVOID, ULONG, _P(ULONG)),
    "HttpCreateUrlGroup": (HTTP_OPAQUE_ID, _P(HTTP_OPAQUE_ID), ULONG),
    "HttpCloseUrlGroup": (HTTP_OPAQUE_ID,),
    "HttpSetUrlGroupProperty": (HTTP_OPAQUE_ID, ENUM, PVOID, ULONG),
    "HttpQueryUrlGroupProperty": (HTTP_OPAQUE_ID, ENUM, PVOID, ULONG, _P(ULONG)),
    "HttpAddUrlToUrlGroup": (HTTP_OPAQUE_ID, PCWSTR, HTTP_OPAQUE_ID, ULONG),
    "HttpRemoveUrlFromUrlGroup": (HTTP_OPAQUE_ID, PCWSTR, ULONG),
    "HttpCreateRequestQueue": (_V, PCWSTR, _P(SECURITY_ATTRIBUTES), ULONG, _P(HANDLE)),
    "HttpSetRequestQueueProperty": (HANDLE, ENUM, PVOID, ULONG, ULONG, PVOID),
    "HttpQueryRequestQueueProperty": (HANDLE, ENUM, PVOID, ULONG, ULONG, _P(ULONG), PVOID),
    "HttpShutdownRequestQueue": (HANDLE,),
    "HttpCloseRequestQueue": (HANDLE,),
    "HttpWaitForDemandStart": (HANDLE, _LPOVERLAPPED),
    "HttpReceiveHttpRequest": (
        HANDLE,
        HTTP_OPAQUE_ID,
        ULONG,
        PVOID,
        ULONG,
        _P(ULONG),
        _LPOVERLAPPED,
    ),
    "HttpReceiveRequestEntityBody": (
        HANDLE,
        HTTP_OPAQUE_ID,
        ULONG,
        PVOID,
        ULONG,
        _P(ULONG),
        _LPOVERLAPPED,
    ),
    "HttpSendHttpResponse": (
        HANDLE,
        HTTP_OPAQUE_ID,
        ULONG,
        _P(HTTP_RESPONSE_V2),
        _P(HTTP_CACHE_POLICY),
        _P(ULONG),
        PVOID,
        ULONG,
        _LPOVERLAPPED,
        PVOID,
    ),
    "HttpSendResponseEntityBody": (
        HANDLE,
        HTTP_OPAQUE_ID,
        ULONG,
        USHORT,
        _P(HTTP_DATA_CHUNK),
        _P(ULONG),
        PVOID,
        ULONG,
        _LPOVERLAPPED,
        PVOID,
    ),
    "HttpCancelHttpRequest": (HANDLE, HTTP_OPAQUE_ID, _LPOVERLAPPED),
    "HttpWaitForDisconnect": (HANDLE, HTTP_OPAQUE_ID, _LPOVERLAPPED),
    "HttpSetServiceConfiguration": (HANDLE, ENUM, PVOID, ULONG, _LPOVERLAPPED),
    "HttpDeleteServiceConfiguration": (HANDLE, ENUM, PVOID, ULONG, _LPOVERLAPPED),
}

#: Exported only on Windows 10 19043+ / Server 2022 (and never by Wine): bound when present.
HTTPAPI_OPTIONAL_PROTOTYPES: Final[dict[str, tuple[Any, ...]]] = {
    "HttpFindUrlGroupId": (PCWSTR, HANDLE, _P(HTTP_OPAQUE_ID)),
    "HttpDelegateRequestEx": (
        HANDLE,
        HANDLE,
        HTTP_OPAQUE_ID,
        HTTP_OPAQUE_ID,
        ULONG,
        _P(HTTP_DELEGATE_REQUEST_PROPERTY_INFO),
    ),
}

#: Wine 8 exports these as stubs that abort the whole process when called (notes section 5.2);
#: ctypes cannot catch that, so callers consult the capabilities first.
WINE_ABORTING_FUNCTIONS: Final = frozenset(
    {
        "HttpQueryServerSessionProperty",
        "HttpQueryUrlGroupProperty",
        "HttpQueryRequestQueueProperty",
        "HttpShutdownRequestQueue",
        "HttpWaitForDemandStart",
        "HttpWaitForDisconnect",
        "HttpWaitForDisconnectEx",
        "HttpCancelHttpRequest",
        "HttpFlushResponseCache",
        "HttpReceiveClientCertificate",
        "HttpGetCounters",
    }
)

#: BOOL-returning helpers from advapi32/kernel32 (failure = 0 plus GetLastError): name -> (dll, argtypes).
WIN32_BOOL_PROTOTYPES: Final[dict[str, tuple[str, tuple[Any, ...]]]] = {
    "ConvertStringSecurityDescriptorToSecurityDescriptorW": (
        "advapi32",
        (PCWSTR, ULONG, _P(PVOID), _P(ULONG)),
    ),
    "LookupAccountNameW": (
        "advapi32",
        (PCWSTR, PCWSTR, PVOID, _P(ULONG), PVOID, _P(ULONG), _P(ENUM)),
    ),
    "ConvertSidToStringSidW": ("advapi32", (PVOID, _P(PVOID))),
    "ConvertStringSidToSidW": ("advapi32", (PCWSTR, _P(PVOID))),
    "IsValidSecurityDescriptor": ("advapi32", (PVOID,)),
    "CloseHandle": ("kernel32", (HANDLE,)),
    "SetHandleInformation": ("kernel32", (HANDLE, ULONG, ULONG)),
}
HANDLE_FLAG_INHERIT: Final = 0x1

ApiFunction = Callable[..., int]


def _check_ulong(result: int, func: Any, _args: tuple[Any, ...]) -> int:
    """The one errcheck of every httpapi function: a non-zero ULONG is an error code."""
    if result != 0:
        raise HttpApiError(result, str(getattr(func, "__name__", "httpapi")))
    return result


def _check_bool(result: int, func: Any, _args: tuple[Any, ...]) -> int:
    """errcheck of the BOOL helpers: 0 means failure, the code is in GetLastError."""
    if not result:
        code = 0
        if sys.platform == "win32":  # a statement, so mypy narrows it on every --platform
            code = ctypes.get_last_error()
        raise HttpApiError(code or ErrorCode.ERROR_INVALID_PARAMETER, str(func.__name__))
    return result


class HttpApi:
    """The declared functions of ``httpapi.dll`` and the few Win32 helpers the backend needs.

    Every attribute below is a ctypes function with ``argtypes`` set and ``restype = c_uint32``, and
    raises ``HttpApiError`` on a non-zero result. Build it through ``load()``: it loads the DLLs.
    """

    HttpInitialize: ApiFunction
    HttpTerminate: ApiFunction
    HttpCreateServerSession: ApiFunction
    HttpCloseServerSession: ApiFunction
    HttpSetServerSessionProperty: ApiFunction
    HttpQueryServerSessionProperty: ApiFunction
    HttpCreateUrlGroup: ApiFunction
    HttpCloseUrlGroup: ApiFunction
    HttpSetUrlGroupProperty: ApiFunction
    HttpQueryUrlGroupProperty: ApiFunction
    HttpAddUrlToUrlGroup: ApiFunction
    HttpRemoveUrlFromUrlGroup: ApiFunction
    HttpCreateRequestQueue: ApiFunction
    HttpSetRequestQueueProperty: ApiFunction
    HttpQueryRequestQueueProperty: ApiFunction
    HttpShutdownRequestQueue: ApiFunction
    HttpCloseRequestQueue: ApiFunction
    HttpWaitForDemandStart: ApiFunction
    HttpReceiveHttpRequest: ApiFunction
    HttpReceiveRequestEntityBody: ApiFunction
    HttpSendHttpResponse: ApiFunction
    HttpSendResponseEntityBody: ApiFunction
    HttpCancelHttpRequest: ApiFunction
    HttpWaitForDisconnect: ApiFunction
    HttpSetServiceConfiguration: ApiFunction
    HttpDeleteServiceConfiguration: ApiFunction
    HttpFindUrlGroupId: ApiFunction | None
    HttpDelegateRequestEx: ApiFunction | None
    ConvertStringSecurityDescriptorToSecurityDescriptorW: ApiFunction
    LookupAccountNameW: ApiFunction
    ConvertSidToStringSidW: ApiFunction
    ConvertStringSidToSidW: ApiFunction
    IsValidSecurityDescriptor: ApiFunction
    CloseHandle: ApiFunction
    SetHandleInformation: ApiFunction
    LocalFree: Callable[[int | None], int | None]
    GetCurrentProcessId: Callable[[], int]

    def __init__(self) -> None:
        if sys.platform != "win32":
            raise UnsupportedPlatformError("httpapi.dll exists only on Windows (or under Wine)")
        httpapi = ctypes.WinDLL("httpapi")
        dlls = {
            "advapi32": ctypes.WinDLL("advapi32", use_last_error=True),
            "kernel32": ctypes.WinDLL("kernel32", use_last_error=True),
        }
        for name, argtypes in HTTPAPI_PROTOTYPES.items():
            setattr(self, name, _declare(httpapi[name], argtypes, ULONG, _check_ulong))
        for name, argtypes in HTTPAPI_OPTIONAL_PROTOTYPES.items():
            # hasattr() is GetProcAddress: False on older Windows and always under Wine.
            fn = (
                _declare(httpapi[name], argtypes, ULONG, _check_ulong)
                if hasattr(httpapi, name)
                else None
            )
            setattr(self, name, fn)
        for name, (dll, argtypes) in WIN32_BOOL_PROTOTYPES.items():
            setattr(self, name, _declare(dlls[dll][name], argtypes, BOOL, _check_bool))
        local_free = dlls["kernel32"].LocalFree
        local_free.argtypes = (PVOID,)
        local_free.restype = PVOID
        self.LocalFree = local_free
        pid = dlls["kernel32"].GetCurrentProcessId
        pid.argtypes = ()
        pid.restype = ULONG
        self.GetCurrentProcessId = pid


def _declare(fn: Any, argtypes: Sequence[Any], restype: Any, errcheck: Any) -> ApiFunction:
    fn.argtypes = tuple(argtypes)
    fn.restype = restype
    fn.errcheck = errcheck
    return fn  # type: ignore[no-any-return]


_api: HttpApi | None = None
_api_lock = threading.Lock()


def load() -> HttpApi:
    """The process-wide ``HttpApi``, loading the DLLs on first use.

    Raises:
        UnsupportedPlatformError: not on Windows.
        OSError: a DLL could not be loaded.
    """
    global _api
    with _api_lock:
        if _api is None:
            _api = HttpApi()
        return _api


def wine_version() -> str | None:
    """The Wine version when running under Wine (``"8.0"``), ``None`` on real Windows.

    Raises:
        UnsupportedPlatformError: not on Windows.
    """
    if sys.platform != "win32":
        raise UnsupportedPlatformError("Wine detection needs the Windows ntdll.dll")
    fn = getattr(ctypes.WinDLL("ntdll"), "wine_get_version", None)
    if fn is None:
        return None
    fn.argtypes = ()
    fn.restype = ctypes.c_char_p
    raw = fn()
    return raw.decode("ascii", "replace") if isinstance(raw, bytes) else None


def security_descriptor_from_sddl(api: HttpApi, sddl: str) -> int:
    """Convert an SDDL string to a self-relative security descriptor; free it with ``LocalFree``.

    Raises:
        HttpApiError: the SDDL is malformed (1336/1338) or names an unknown SID (1337).
    """
    out = PVOID()
    api.ConvertStringSecurityDescriptorToSecurityDescriptorW(
        sddl, SDDL_REVISION_1, ctypes.byref(out), None
    )
    if not out.value:  # pragma: no cover - the API sets it whenever it returns TRUE
        raise HttpApiError(
            ErrorCode.ERROR_INVALID_SECURITY_DESCR, "ConvertStringSecurityDescriptor"
        )
    return int(out.value)


def lookup_account_sid(api: HttpApi, name: str) -> tuple[str, SidNameUse]:
    """Resolve an account name (``user``, ``group`` or ``DOMAIN\\user``) to its SID string and kind.

    Raises:
        HttpApiError: 1332 (ERROR_NONE_MAPPED) for an unknown name.
    """
    sid_size = ULONG(0)
    domain_size = ULONG(0)
    use = ENUM(0)
    try:
        # The first call only sizes the buffers; it fails with 122 by design.
        api.LookupAccountNameW(
            None,
            name,
            None,
            ctypes.byref(sid_size),
            None,
            ctypes.byref(domain_size),
            ctypes.byref(use),
        )
    except HttpApiError as exc:
        if exc.code != ErrorCode.ERROR_INSUFFICIENT_BUFFER:
            raise
    sid = ctypes.create_string_buffer(max(int(sid_size.value), 1))
    domain = ctypes.create_unicode_buffer(max(int(domain_size.value), 1))
    api.LookupAccountNameW(
        None,
        name,
        ctypes.addressof(sid),
        ctypes.byref(sid_size),
        ctypes.addressof(domain),
        ctypes.byref(domain_size),
        ctypes.byref(use),
    )
    text = PVOID()
    api.ConvertSidToStringSidW(ctypes.addressof(sid), ctypes.byref(text))
    try:
        value = ctypes.wstring_at(int(text.value or 0))
    finally:
        api.LocalFree(text.value)
    try:
        kind = SidNameUse(int(use.value))
    except ValueError:
        kind = SidNameUse.UNKNOWN
    return value, kind


#: Sizes and field offsets a layout test checks against notes section 1.3 (struct -> size).
STRUCT_SIZES: Final[dict[type[ctypes.Structure], int]] = {
    HTTPAPI_VERSION: 4,
    HTTP_VERSION: 4,
    HTTP_PROPERTY_FLAGS: 4,
    HTTP_STATE_INFO: 8,
    HTTP_CONNECTION_LIMIT_INFO: 8,
    HTTP_BANDWIDTH_LIMIT_INFO: 8,
    HTTP_LISTEN_ENDPOINT_INFO: 8,
    HTTP_BINDING_INFO: 16,
    HTTP_QOS_SETTING_INFO: 16,
    HTTP_FLOWRATE_INFO: 16,
    HTTP_TIMEOUT_LIMIT_INFO: 20,
    HTTP_KNOWN_HEADER: 16,
    HTTP_UNKNOWN_HEADER: 24,
    HTTP_COOKED_URL: 40,
    HTTP_DATA_CHUNK: 32,
    HTTP_REQUEST_HEADERS: 688,
    HTTP_RESPONSE_HEADERS: 512,
    HTTP_REQUEST_V2: 864,
    HTTP_RESPONSE_V2: 568,
    SECURITY_ATTRIBUTES: 24,
    HTTP_DELEGATE_REQUEST_PROPERTY_INFO: 16,
}
