"""_ffi's error type, its errcheck, the prototype tables and the Linux behaviour of the loaders."""

from __future__ import annotations

import ctypes
import pickle
import sys
import typing

import pytest

from orchestrator.httpapi import _ffi
from orchestrator.httpapi._ffi import ErrorCode, HttpApiError


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (2, "ERROR_FILE_NOT_FOUND"),
        (5, "ERROR_ACCESS_DENIED"),
        (87, "ERROR_INVALID_PARAMETER"),
        (120, "ERROR_CALL_NOT_IMPLEMENTED"),
        (183, "ERROR_ALREADY_EXISTS"),
        (234, "ERROR_MORE_DATA"),
        (995, "ERROR_OPERATION_ABORTED"),
        (1114, "ERROR_DLL_INIT_FAILED"),
        (1168, "ERROR_NOT_FOUND"),
        (1306, "ERROR_REVISION_MISMATCH"),
        (6807, "ERROR_OBJECT_NO_LONGER_EXISTS"),
    ],
)
def test_error_codes_carry_their_win32_names(code: int, name: str) -> None:
    """ErrorCode holds the codes of notes section 1.6 under their winerror.h names."""
    assert name == _ffi.error_name(code)
    assert code == ErrorCode[name]


def test_unknown_error_code_gets_a_numeric_name() -> None:
    """A code outside the table still gets a usable name."""
    assert "ERROR_4242" == _ffi.error_name(4242)


def test_http_api_error_is_an_oserror_with_code_name_and_function() -> None:
    """HttpApiError is an OSError (STYLE 7) carrying what callers branch on."""
    exc = HttpApiError(183, "HttpCreateRequestQueue")
    assert isinstance(exc, OSError)
    assert (183, "ERROR_ALREADY_EXISTS", "HttpCreateRequestQueue", 183) == (
        exc.code,
        exc.name,
        exc.function,
        exc.winerror,
    )
    assert "HttpCreateRequestQueue failed: ERROR_ALREADY_EXISTS (183)" == str(exc)


def test_http_api_error_survives_pickling() -> None:
    """Errors cross process boundaries (worker -> controller reports) intact."""
    exc = pickle.loads(pickle.dumps(HttpApiError(87, "HttpSetRequestQueueProperty")))
    assert (87, "HttpSetRequestQueueProperty") == (exc.code, exc.function)


def _libc_abs() -> typing.Any:
    fn = ctypes.CDLL(None).abs
    fn.argtypes = (ctypes.c_int,)
    fn.restype = _ffi.ULONG
    fn.errcheck = _ffi._check_ulong
    return fn


@pytest.mark.skipif(sys.platform == "win32", reason="uses the C library of a POSIX system")
def test_errcheck_passes_zero_through() -> None:
    """The one errcheck returns 0 unchanged (a real ctypes call: libc abs)."""
    assert 0 == _libc_abs()(0)


@pytest.mark.skipif(sys.platform == "win32", reason="uses the C library of a POSIX system")
def test_errcheck_turns_a_nonzero_ulong_into_http_api_error() -> None:
    """A non-zero ULONG result raises HttpApiError naming the function."""
    with pytest.raises(HttpApiError) as info:
        _libc_abs()(-183)
    assert (183, "abs") == (info.value.code, info.value.function)


def test_every_declared_function_is_an_attribute_of_http_api() -> None:
    """The prototype tables and HttpApi's annotations list the same functions."""
    declared = (
        set(_ffi.HTTPAPI_PROTOTYPES)
        | set(_ffi.HTTPAPI_OPTIONAL_PROTOTYPES)
        | set(_ffi.WIN32_BOOL_PROTOTYPES)
        | {"LocalFree", "GetCurrentProcessId"}
    )
    assert declared == set(_ffi.HttpApi.__annotations__)


@pytest.mark.parametrize(
    ("function", "count"),
    [
        ("HttpInitialize", 3),
        ("HttpTerminate", 2),
        ("HttpCreateServerSession", 3),
        ("HttpSetServerSessionProperty", 4),
        ("HttpSetUrlGroupProperty", 4),
        ("HttpAddUrlToUrlGroup", 4),
        ("HttpRemoveUrlFromUrlGroup", 3),
        ("HttpCreateRequestQueue", 5),
        ("HttpSetRequestQueueProperty", 6),
        ("HttpQueryRequestQueueProperty", 7),
        ("HttpReceiveHttpRequest", 7),
        ("HttpReceiveRequestEntityBody", 7),
        ("HttpSendHttpResponse", 10),
        ("HttpSendResponseEntityBody", 10),
        ("HttpSetServiceConfiguration", 5),
        ("HttpDelegateRequestEx", 6),
    ],
)
def test_prototypes_have_the_sdk_argument_counts(function: str, count: int) -> None:
    """Each prototype lists as many argtypes as the C declaration has parameters."""
    table = {**_ffi.HTTPAPI_PROTOTYPES, **_ffi.HTTPAPI_OPTIONAL_PROTOTYPES}
    assert count == len(table[function])


def test_ids_are_passed_as_64_bit_values() -> None:
    """Session, group, request ids and URL contexts are ULONGLONG (ints as C int would truncate)."""
    table = _ffi.HTTPAPI_PROTOTYPES
    assert table["HttpCloseServerSession"] == (ctypes.c_uint64,)
    assert table["HttpAddUrlToUrlGroup"][0] is ctypes.c_uint64
    assert table["HttpAddUrlToUrlGroup"][2] is ctypes.c_uint64
    assert table["HttpReceiveHttpRequest"][1] is ctypes.c_uint64


def test_version_goes_by_value() -> None:
    """HTTPAPI_VERSION is an argtype itself (by value), and the backend always speaks 2.0."""
    assert _ffi.HTTPAPI_PROTOTYPES["HttpInitialize"][0] is _ffi.HTTPAPI_VERSION
    version = _ffi.api_version()
    assert (2, 0) == (version.HttpApiMajorVersion, version.HttpApiMinorVersion)


def test_fixed_width_aliases_have_windows_sizes() -> None:
    """ULONG 4, USHORT 2, ULONGLONG 8, BOOL/ENUM 4, BOOLEAN 1, HANDLE 8 on x64."""
    sizes = [
        ctypes.sizeof(t)
        for t in (_ffi.ULONG, _ffi.USHORT, _ffi.ULONGLONG, _ffi.BOOL, _ffi.ENUM, _ffi.BOOLEAN)
    ]
    assert [4, 2, 8, 4, 4, 1] == sizes
    assert 8 == ctypes.sizeof(_ffi.HANDLE)


@pytest.mark.skipif(sys.platform == "win32", reason="checks the non-Windows behaviour")
def test_loading_the_dlls_off_windows_raises_unsupported_platform() -> None:
    """load() and wine_version() refuse cleanly on Linux instead of failing on a missing windll."""
    with pytest.raises(_ffi.UnsupportedPlatformError):
        _ffi.load()
    with pytest.raises(_ffi.UnsupportedPlatformError):
        _ffi.wine_version()


def test_wine_aborting_functions_include_query_and_shutdown() -> None:
    """The calls Wine 8 aborts on are listed, so capabilities and the fake can keep away from them."""
    assert {
        "HttpQueryRequestQueueProperty",
        "HttpShutdownRequestQueue",
        "HttpWaitForDemandStart",
        "HttpCancelHttpRequest",
    } <= _ffi.WINE_ABORTING_FUNCTIONS
