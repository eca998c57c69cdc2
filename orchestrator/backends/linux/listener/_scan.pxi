# The compiled core's head scanning: included by ``_fast.pyx`` (one module; see its docstring).
#
# Owns: the character classes of the fast path's strict subset (token, field value, request
# target), the field kinds of requests and responses, Connection option parsing, decimal reading
# and writing, the scratch buffer forwarded fields are written to, and ``_scan_fields`` (one pass
# over a head's field lines). The Python counterparts are the regular expressions, the
# ``_REQUEST_KINDS``/``_RESPONSE_KINDS`` tables and ``request_head``/``response_head`` in ``fast.py``.
# Uses nothing from the other included files.

# Field kinds.
cdef enum:
    K_FORWARD = 0
    K_DROP = 1
    K_HOST = 2
    K_LENGTH = 3
    K_CONNECTION = 4
    K_DECLINE = 5


# Character classes (see fast.py): token characters, field-value characters without obs-text, and
# the request-target characters the fast path recognises.
cdef unsigned char _TCHAR[256]
cdef unsigned char _VALUE[256]
cdef unsigned char _TARGET[256]


cdef void _init_tables():
    cdef int c
    cdef bytes tchar = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    cdef bytes target = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%"
    for c in range(256):
        _TCHAR[c] = 0
        _TARGET[c] = 0
        _VALUE[c] = 1 if (c == 9 or 0x20 <= c <= 0x7E) else 0
    for c in tchar:
        _TCHAR[c] = 1
    for c in target:
        _TARGET[c] = 1


_init_tables()


cdef inline unsigned char _lower(unsigned char c) noexcept nogil:
    if 0x41 <= c <= 0x5A:
        return c + 0x20
    return c


cdef inline bint _is(const char* s, Py_ssize_t n, const char* literal, Py_ssize_t m) noexcept nogil:
    return n == m and memcmp(s, literal, m) == 0


cdef int _request_kind(const char* name, Py_ssize_t n) noexcept nogil:
    """The kind of a request field by its lower-cased name (see fast._REQUEST_KINDS)."""
    if n == 4:
        return K_HOST if memcmp(name, b"host", 4) == 0 else K_FORWARD
    if n == 14:
        return K_LENGTH if memcmp(name, b"content-length", 14) == 0 else K_FORWARD
    if n == 10:
        if memcmp(name, b"connection", 10) == 0:
            return K_CONNECTION
        if memcmp(name, b"keep-alive", 10) == 0:
            return K_DROP
        return K_FORWARD
    if n == 16:
        if memcmp(name, b"proxy-connection", 16) == 0 or memcmp(name, b"x-forwarded-host", 16) == 0:
            return K_DROP
        return K_FORWARD
    if n == 2:
        return K_DROP if memcmp(name, b"te", 2) == 0 else K_FORWARD
    if n == 7:
        if memcmp(name, b"trailer", 7) == 0:
            return K_DROP
        if memcmp(name, b"upgrade", 7) == 0:
            return K_DECLINE
        return K_FORWARD
    if n == 15:
        return K_DROP if memcmp(name, b"x-forwarded-for", 15) == 0 else K_FORWARD
    if n == 17:
        if memcmp(name, b"x-forwarded-proto", 17) == 0:
            return K_DROP
        if memcmp(name, b"transfer-encoding", 17) == 0:
            return K_DECLINE
        return K_FORWARD
    if n == 9:
        return K_DROP if memcmp(name, b"forwarded", 9) == 0 else K_FORWARD
    if n == 6:
        return K_DECLINE if memcmp(name, b"expect", 6) == 0 else K_FORWARD
    if n == 5:
        return K_DECLINE if memcmp(name, b"close", 5) == 0 else K_FORWARD
    return K_FORWARD


cdef int _response_kind(const char* name, Py_ssize_t n) noexcept nogil:
    """The kind of a response field by its lower-cased name (see fast._RESPONSE_KINDS)."""
    if n == 14:
        return K_LENGTH if memcmp(name, b"content-length", 14) == 0 else K_FORWARD
    if n == 10:
        if memcmp(name, b"connection", 10) == 0:
            return K_CONNECTION
        if memcmp(name, b"keep-alive", 10) == 0:
            return K_DROP
        return K_FORWARD
    if n == 16:
        return K_DROP if memcmp(name, b"proxy-connection", 16) == 0 else K_FORWARD
    if n == 2:
        return K_DROP if memcmp(name, b"te", 2) == 0 else K_FORWARD
    if n == 7:
        if memcmp(name, b"trailer", 7) == 0:
            return K_DROP
        if memcmp(name, b"upgrade", 7) == 0:
            return K_DECLINE
        return K_FORWARD
    if n == 17:
        return K_DECLINE if memcmp(name, b"transfer-encoding", 17) == 0 else K_FORWARD
    if n == 5:
        return K_DECLINE if memcmp(name, b"close", 5) == 0 else K_FORWARD
    return K_FORWARD


cdef int _connection_options(const char* v, Py_ssize_t n) noexcept nogil:
    """A Connection value's options as bits (1: close, 2: keep-alive), -1 for any other option."""
    cdef int bits = 0
    cdef Py_ssize_t i = 0, start, stop, k
    cdef char word[10]
    while i <= n:
        start = i
        while i < n and v[i] != 44:  # ','
            i += 1
        stop = i
        i += 1
        while start < stop and (v[start] == 32 or v[start] == 9):
            start += 1
        while stop > start and (v[stop - 1] == 32 or v[stop - 1] == 9):
            stop -= 1
        if stop == start:
            continue
        if stop - start == 5 or stop - start == 10:
            for k in range(stop - start):
                word[k] = <char>_lower(<unsigned char>v[start + k])
            if stop - start == 5 and memcmp(word, b"close", 5) == 0:
                bits |= 1
                continue
            if stop - start == 10 and memcmp(word, b"keep-alive", 10) == 0:
                bits |= 2
                continue
        return -1
    return bits


cdef inline Py_ssize_t _digits(const char* v, Py_ssize_t n, Py_ssize_t cap) noexcept nogil:
    """The value of a run of 1-19 ASCII digits; -1 if it is not one; cap + 1 if above ``cap``."""
    cdef Py_ssize_t i, value = 0
    if n < 1 or n > 19:
        return -1
    for i in range(n):
        if not 0x30 <= <unsigned char>v[i] <= 0x39:
            return -1
        if value <= cap:
            value = value * 10 + (v[i] - 0x30)
    return value if value <= cap else cap + 1


cdef inline Py_ssize_t _put_decimal(char* out, Py_ssize_t value) noexcept nogil:
    """Write ``value`` (>= 0) in decimal; returns the number of bytes written."""
    cdef char tmp[24]
    cdef Py_ssize_t n = 0, i
    if value == 0:
        out[0] = 48
        return 1
    while value > 0:
        tmp[n] = <char>(48 + value % 10)
        value //= 10
        n += 1
    for i in range(n):
        out[i] = tmp[n - 1 - i]
    return n


# A scratch buffer for the fields of the head being forwarded (one event loop per process).
cdef char* _scratch = NULL
cdef Py_ssize_t _scratch_size = 0


cdef char* _scratch_for(Py_ssize_t size) except NULL:
    global _scratch, _scratch_size
    cdef char* grown
    if size > _scratch_size:
        grown = <char*>PyMem_Realloc(_scratch, size)
        if grown == NULL:
            raise MemoryError()
        _scratch = grown
        _scratch_size = size
    return _scratch


# Field scan result, shared by both directions.
cdef struct Scan:
    Py_ssize_t fields_len  # bytes of forwarded field lines written to the scratch buffer
    Py_ssize_t nfields
    Py_ssize_t host_at
    Py_ssize_t host_len
    Py_ssize_t length  # Content-Length, -1 when absent
    int options
    bint has_host


cdef int _scan_fields(
    const char* p, Py_ssize_t start, Py_ssize_t end, bint request, Py_ssize_t max_fields,
    Py_ssize_t length_cap, char* out, Scan* scan
) noexcept nogil:
    """Scan the field lines in ``p[start:end]`` (``end`` is where the empty line starts), writing
    the forwarded ones (lower-cased name, ": ", value without OWS, CRLF) to ``out``.

    Returns 1 when every line is in the fast path's subset, 0 to decline.
    """
    cdef Py_ssize_t i = start, name_start, name_end, v_start, v_end, line_end, o = 0, k
    cdef int kind, bits
    cdef unsigned char c
    scan.nfields = 0
    scan.has_host = False
    scan.host_at = 0
    scan.host_len = 0
    scan.length = -1
    scan.options = 0
    while i < end:
        name_start = i
        while i < end and _TCHAR[<unsigned char>p[i]]:
            i += 1
        if i == name_start or i >= end or p[i] != 58:  # ':'
            return 0
        name_end = i
        i += 1
        while i < end and (p[i] == 32 or p[i] == 9):
            i += 1
        v_start = i
        while i < end and _VALUE[<unsigned char>p[i]]:
            i += 1
        line_end = i
        if i + 2 > end or p[i] != 13 or p[i + 1] != 10:
            return 0
        v_end = line_end
        while v_end > v_start and (p[v_end - 1] == 32 or p[v_end - 1] == 9):
            v_end -= 1
        i += 2
        scan.nfields += 1
        if scan.nfields > max_fields:
            return 0
        # The lower-cased name goes to the output first; it is kept only if forwarded.
        for k in range(name_end - name_start):
            out[o + k] = <char>_lower(<unsigned char>p[name_start + k])
        if request:
            kind = _request_kind(out + o, name_end - name_start)
        else:
            kind = _response_kind(out + o, name_end - name_start)
        if kind == K_FORWARD:
            o += name_end - name_start
            out[o] = 58
            out[o + 1] = 32
            o += 2
            memcpy(out + o, p + v_start, v_end - v_start)
            o += v_end - v_start
            out[o] = 13
            out[o + 1] = 10
            o += 2
        elif kind == K_HOST:
            if scan.has_host:
                return 0
            scan.has_host = True
            scan.host_at = v_start
            scan.host_len = v_end - v_start
        elif kind == K_LENGTH:
            if scan.length != -1:
                return 0
            scan.length = _digits(p + v_start, v_end - v_start, length_cap)
            if scan.length < 0:
                return 0
        elif kind == K_CONNECTION:
            bits = _connection_options(p + v_start, v_end - v_start)
            if bits < 0:
                return 0
            scan.options |= bits
        elif kind == K_DECLINE:
            return 0
    scan.fields_len = o
    return 1
