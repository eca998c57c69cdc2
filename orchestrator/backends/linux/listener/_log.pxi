# The compiled core's access log: included by ``_fast.pyx`` (one module; see its docstring).
#
# Owns: ``format_log`` and ``format_access``, which write the buffered access records as JSON lines
# into one reusable C buffer, byte for byte as ``fast.format_log`` does (which formats any record
# this code declines: a field that needs JSON escaping, or not of the usual type).
# Uses ``_put_decimal`` (``_scan.pxi``).

from orchestrator.backends.linux.listener.fast import format_access as _format_access_py

cdef extern from "Python.h":
    char* PyOS_double_to_string(
        double val, char format_code, int precision, int flags, int* ptype
    ) except NULL


cdef struct Out:
    char* data
    Py_ssize_t size
    Py_ssize_t used


cdef int _out_reserve(Out* out, Py_ssize_t more) except -1:
    cdef Py_ssize_t want = out.used + more
    cdef char* grown
    if want > out.size:
        want = max(want, out.size * 2, 4096)
        grown = <char*>PyMem_Realloc(out.data, want)
        if grown == NULL:
            raise MemoryError()
        out.data = grown
        out.size = want
    return 0


cdef int _out_raw(Out* out, const char* s, Py_ssize_t n) except -1:
    _out_reserve(out, n)
    memcpy(out.data + out.used, s, n)
    out.used += n
    return 0


cdef Py_ssize_t _put_float3(char* w, double value) except -1:
    """Write ``value`` with three decimals, exactly as f"{value:.3f}" does (correctly rounded);
    returns the bytes written (at most 32 for the values a log carries; larger ones are refused).

    value * 1000 is computed in binary, so it may sit a little off the decimal value; when it lands
    so close to a rounding boundary that the error could matter, Python's own formatter decides.
    """
    cdef double scaled, whole, frac, tolerance
    cdef long long n
    cdef Py_ssize_t k
    cdef char* text
    scaled = value * 1000.0
    if value >= 0.0 and scaled < 1e15:
        whole = floor(scaled)
        frac = scaled - whole
        tolerance = scaled * 4.5e-16 + 1e-12  # a few units in the last place of scaled
        if fabs(frac - 0.5) > tolerance and frac > tolerance and 1.0 - frac > tolerance:
            n = <long long>whole + (1 if frac > 0.5 else 0)
            k = _put_decimal(w, n // 1000)
            w[k] = 46  # '.'
            w[k + 1] = <char>(48 + (n % 1000) // 100)
            w[k + 2] = <char>(48 + (n % 100) // 10)
            w[k + 3] = <char>(48 + n % 10)
            return k + 4
    text = PyOS_double_to_string(value, b"f", 3, 0, NULL)
    try:
        k = strlen(text)
        if k > 32:
            raise ValueError("number too long for the access log")
        memcpy(w, text, k)
    finally:
        PyMem_Free(text)
    return k


cdef bint _plain(const char* s, Py_ssize_t n) noexcept nogil:
    """True if ``s`` needs no JSON escaping: printable ASCII without quote or backslash."""
    cdef Py_ssize_t i
    cdef unsigned char c
    for i in range(n):
        c = <unsigned char>s[i]
        if c < 0x20 or c > 0x7E or c == 0x22 or c == 0x5C:
            return False
    return True


cdef bint _text(object value, const char** s, Py_ssize_t* n) except -1:
    """Point at the bytes of an ASCII ``str`` or of ``bytes``; False if JSON would escape them."""
    if PyBytes_CheckExact(value):
        s[0] = PyBytes_AS_STRING(value)
        n[0] = PyBytes_GET_SIZE(value)
    elif isinstance(value, str):
        s[0] = PyUnicode_AsUTF8AndSize(value, n)  # no copy for an ASCII string
    else:
        return False
    return _plain(s[0], n[0])


cdef inline Py_ssize_t _put(char* w, const char* s, Py_ssize_t n) noexcept nogil:
    memcpy(w, s, n)
    return n


cdef inline Py_ssize_t _put_string(char* w, const char* s, Py_ssize_t n) noexcept nogil:
    w[0] = 34
    memcpy(w + 1, s, n)
    w[n + 1] = 34
    return n + 2


cdef int _out_access(Out* out, tuple r, double wall_offset, bytes pid) except -1:
    """One record as ``fast.format_access`` writes it; -2 if a field needs escaping or is not of
    the usual type (the caller then lets the twin format the record)."""
    cdef const char* t[6]
    cdef Py_ssize_t tn[6]
    cdef int k
    cdef Py_ssize_t o
    cdef char* w
    cdef object status = r[5] if len(r) == 11 else None
    cdef object sent = r[6] if len(r) == 11 else None
    if len(r) != 11 or type(status) is not int or type(sent) is not int:
        return -2
    if not (_text(r[1], &t[0], &tn[0]) and _text(r[2], &t[1], &tn[1])
            and _text(r[3], &t[2], &tn[2]) and _text(r[4], &t[3], &tn[3])
            and _text(r[8], &t[4], &tn[4]) and _text(r[9], &t[5], &tn[5])):
        return -2
    _out_reserve(out, 320 + tn[0] + tn[1] + tn[2] + tn[3] + tn[4] + tn[5] + PyBytes_GET_SIZE(pid))
    w = out.data + out.used
    o = _put(w, b'{"event":"access","ts":', 23)
    o += _put_float3(w + o, <double>r[0] + wall_offset)
    o += _put(w + o, b',"pid":', 7)
    o += _put(w + o, PyBytes_AS_STRING(pid), PyBytes_GET_SIZE(pid))
    o += _put(w + o, b',"client":', 10)
    o += _put_string(w + o, t[0], tn[0])
    o += _put(w + o, b',"host":', 8)
    o += _put_string(w + o, t[1], tn[1])
    o += _put(w + o, b',"method":', 10)
    o += _put_string(w + o, t[2], tn[2])
    o += _put(w + o, b',"target":', 10)
    o += _put_string(w + o, t[3], tn[3])
    o += _put(w + o, b',"status":', 10)
    o += _put_decimal_signed(w + o, status)
    o += _put(w + o, b',"bytes":', 9)
    o += _put_decimal_signed(w + o, sent)
    o += _put(w + o, b',"duration_ms":', 15)
    o += _put_float3(w + o, <double>r[7])
    o += _put(w + o, b',"queue":', 9)
    o += _put_string(w + o, t[4], tn[4])
    o += _put(w + o, b',"group":', 9)
    o += _put_string(w + o, t[5], tn[5])
    o += _put(w + o, b',"upstream_ms":', 15)
    o += _put_float3(w + o, <double>r[10])
    w[o] = 125  # '}'
    out.used += o + 1
    return 0


cdef Py_ssize_t _put_decimal_signed(char* w, long long value) except -1:
    if value < 0:
        w[0] = 45
        return 1 + _put_decimal(w + 1, -value)
    return _put_decimal(w, value)


def format_access(record, double wall_offset, long pid):
    """One access record as its JSON log line (see ``fast.format_access``)."""
    text = format_log([record], wall_offset, pid)
    return text[: len(text) - 1]


def format_log(list records, double wall_offset, long pid):
    """The listener's buffered log as text (see ``fast.format_log``)."""
    cdef bytes pid_text = str(pid).encode("ascii")
    _log.used = 0
    for record in records:
        if not (isinstance(record, tuple) and _out_access(&_log, <tuple>record, wall_offset, pid_text) == 0):
            line = record if isinstance(record, str) else _format_access_py(record, wall_offset, pid)
            encoded = (<str>line).encode("utf-8", "surrogateescape")
            _out_raw(&_log, PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded))
        _out_raw(&_log, b"\n", 1)
    text = PyBytes_FromStringAndSize(_log.data, _log.used).decode("utf-8", "surrogateescape")
    if _log.size > 1 << 20:
        # A burst of long lines made it big: let it go rather than hold it for the process's life.
        PyMem_Free(_log.data)
        _log.data = NULL
        _log.size = 0
    return text


# The access log's text buffer, kept between flushes (one event loop per process).
cdef Out _log
_log.data = NULL
_log.size = 0
_log.used = 0
