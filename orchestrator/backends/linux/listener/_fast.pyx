# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=False
"""The listener's hot path, compiled: the same names and behaviour as ``fast.py``, its pure-Python twin.

Owns: what ``fast.py`` owns (``FastClient``, ``Upstream``, ``UpstreamPool``, ``RouteEntry``,
``RouteCache``, ``QueueStats``, the connection states), with the scanning of heads and the writing of
forwarded heads done over C buffers in one pass. ``fast.py`` is the specification: read it first;
every branch here has its counterpart there, in the same order, and
``tests/integration/listener/test_twins.py`` compares the two byte for byte.

Must not import: ``proxy`` or ``app`` (they build on this module).
"""

import os
from asyncio import get_running_loop as asyncio_get_running_loop

from cpython.bytes cimport (
    PyBytes_AS_STRING,
    PyBytes_CheckExact,
    PyBytes_FromStringAndSize,
    PyBytes_GET_SIZE,
)
from cpython.list cimport PyList_Append
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.math cimport fabs, floor
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset, strlen
from posix.unistd cimport close as c_close

cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void* ptr
        int fd
        uint32_t u32
        uint64_t u64
    struct epoll_event:
        uint32_t events
        epoll_data_t data
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event* event)
    int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout)
    enum:
        EPOLLIN
        EPOLLOUT
        EPOLLERR
        EPOLLHUP
        EPOLL_CTL_ADD
        EPOLL_CTL_MOD
        EPOLL_CLOEXEC

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t
    struct sockaddr:
        sa_family_t sa_family
    int socket_c "socket"(int domain, int type, int protocol)
    int connect_c "connect"(int fd, const sockaddr* addr, socklen_t addrlen)
    ssize_t send_c "send"(int fd, const void* buf, size_t n, int flags)
    ssize_t recv_c "recv"(int fd, void* buf, size_t n, int flags)
    enum:
        AF_UNIX
        SOCK_STREAM
        SOCK_NONBLOCK
        SOCK_CLOEXEC
        MSG_NOSIGNAL

cdef extern from "<sys/un.h>" nogil:
    struct sockaddr_un:
        sa_family_t sun_family
        char sun_path[108]

cdef extern from *:
    """
    #include <stddef.h>
    #include <sys/un.h>
    static size_t offsetof_sun_path(void) { return offsetof(struct sockaddr_un, sun_path); }
    """
    size_t offsetof_sun_path()

from orchestrator.backends.linux.listener.fast import format_access as _format_access_py

cdef extern from "Python.h":
    char* PyOS_double_to_string(
        double val, char format_code, int precision, int flags, int* ptype
    ) except NULL

cdef extern from "string.h" nogil:
    void* memmem(const void* haystack, size_t haystacklen, const void* needle, size_t needlelen)

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk_id, timespec* tp)
    enum: CLOCK_MONOTONIC

IMPLEMENTATION = "compiled"

HEAD, BODY, WAIT, IDLE, CLOSING = range(5)

cdef enum:
    C_HEAD = 0
    C_WAIT = 2
    C_IDLE = 3

HIGH_WATER = 256 * 1024
BUFFERED_BODY = 64 * 1024
FAST_RESPONSE_MAX = 64 * 1024
FAST_RESPONSE_HEAD_MAX = 8192
FAST_MAX_FIELDS = 100
POOL_MAX = 256
ROUTE_CACHE_MAX = 4096
LATENCY_BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})

cdef enum:
    C_BUFFERED_BODY = 65536
    C_FAST_RESPONSE_MAX = 65536
    C_FAST_RESPONSE_HEAD_MAX = 8192
    C_FAST_MAX_FIELDS = 100
    C_POOL_MAX = 256
    C_ROUTE_CACHE_MAX = 4096
    N_BUCKETS = 13

cdef double[N_BUCKETS] _BOUNDS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]

# What a response from the fast path tells the caller.
cdef enum:
    R_DONE = 0
    R_MORE = 1
    R_DECLINE = 2

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

cdef bytes M_GET = b"GET"
cdef bytes M_POST = b"POST"
cdef bytes M_PUT = b"PUT"
cdef bytes M_DELETE = b"DELETE"
cdef bytes M_HEAD = b"HEAD"
cdef bytes M_OPTIONS = b"OPTIONS"
cdef bytes M_PATCH = b"PATCH"
cdef bytes M_TRACE = b"TRACE"
cdef bytes EMPTY = b""


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


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


cdef class QueueStats:
    """Counters of one queue (or URL group) (see ``fast.QueueStats``)."""

    cdef public long long requests
    cdef public long long inflight
    cdef public dict refused
    cdef public double upstream_ms_total
    cdef long long _status[10]
    cdef long long _latency[N_BUCKETS + 1]

    def __init__(self):
        cdef int i
        self.requests = 0
        self.inflight = 0
        self.refused = {}
        self.upstream_ms_total = 0.0
        for i in range(10):
            self._status[i] = 0
        for i in range(N_BUCKETS + 1):
            self._latency[i] = 0

    cdef inline void count(self, long status, double duration_ms, double upstream_ms) noexcept:
        cdef int i
        cdef long cls = status // 100
        self._status[cls if cls < 9 else 9] += 1
        for i in range(N_BUCKETS):
            if duration_ms <= _BOUNDS[i]:
                self._latency[i] += 1
                break
        else:
            self._latency[N_BUCKETS] += 1
        self.upstream_ms_total += upstream_ms

    def finished(self, long status, double duration_ms, double upstream_ms):
        """Count a completed request."""
        self.count(status, duration_ms, upstream_ms)

    @property
    def latency(self):
        return [self._latency[i] for i in range(N_BUCKETS + 1)]

    @property
    def status(self):
        return {f"{i}xx": self._status[i] for i in range(10) if self._status[i]}

    def as_dict(self):
        """For the stats message."""
        return {
            "requests": self.requests,
            "inflight": self.inflight,
            "status": self.status,
            "refused": dict(self.refused),
            "latency_ms_buckets": list(LATENCY_BUCKETS_MS),
            "latency": self.latency,
            "upstream_ms_total": round(self.upstream_ms_total, 3),
        }


cdef class RouteEntry:
    """A routing decision for one (Host, target) (see ``fast.RouteEntry``)."""

    cdef public object route
    cdef public object queue
    cdef public UpstreamPool pool
    cdef public bytes host
    cdef public bytes target
    cdef public QueueStats qstats
    cdef public QueueStats gstats
    cdef public long limit
    cdef public str queue_name
    cdef public str group
    cdef public bytes prefix

    def __init__(self, route, queue, UpstreamPool pool, bytes host, bytes target,
                 QueueStats qstats, QueueStats gstats):
        self.route = route
        self.queue = queue
        self.pool = pool
        self.host = host
        self.target = target
        self.qstats = qstats
        self.gstats = gstats
        self.limit = -1 if route.max_connections is None else route.max_connections
        self.queue_name = queue.name
        self.group = route.group
        self.prefix = b" " + target + b" HTTP/1.1\r\nhost: " + host + b"\r\n"


cdef class RouteCache:
    """Routing decisions of one listening address (see ``fast.RouteCache``)."""

    cdef public dict entries
    cdef public bint valid

    def __init__(self):
        self.entries = {}
        self.valid = True

    cpdef object get(self, bytes host, bytes target):
        """The decision made earlier for this Host value and target, if any."""
        return self.entries.get((host, target))

    cpdef put(self, bytes host, bytes target, RouteEntry entry):
        """Keep a decision (a full cache starts over)."""
        if len(self.entries) >= C_ROUTE_CACHE_MAX:
            self.entries.clear()
        self.entries[(host, target)] = entry


cdef class Poller:
    """The listener's upstream connections, watched with one epoll set of their own (see
    ``fast.Poller``); here the sockets are plain descriptors, used with the C library directly."""

    cdef int epfd
    cdef public dict conns
    cdef epoll_event events[64]

    def __init__(self, loop):
        self.epfd = epoll_create1(EPOLL_CLOEXEC)
        if self.epfd < 0:
            _raise_errno()
        self.conns = {}
        loop.add_reader(self.epfd, self._events)

    def _events(self):
        cdef int n, i, fd
        cdef unsigned int mask
        cdef Upstream conn
        n = epoll_wait(self.epfd, self.events, 64, 0)
        for i in range(n):
            fd = self.events[i].data.fd
            mask = self.events[i].events
            found = self.conns.get(fd)
            if found is None:
                continue
            conn = <Upstream>found
            if mask & (EPOLLIN | EPOLLHUP | EPOLLERR):
                conn._readable()
            if mask & EPOLLOUT and not conn.closed:
                conn._writable()

    cdef int watch(self, int fd, bint reading, bint writing, int op) except -1:
        cdef epoll_event ev
        ev.events = (EPOLLIN if reading else 0) | (EPOLLOUT if writing else 0)
        ev.data.u64 = 0
        ev.data.fd = fd
        if epoll_ctl(self.epfd, op, fd, &ev) < 0:
            _raise_errno()
        return 0

    def close(self):
        """Stop watching (the listener is exiting)."""
        if self.epfd >= 0:
            c_close(self.epfd)
            self.epfd = -1


cdef int _raise_errno() except -1:
    cdef int err = errno
    raise OSError(err, os.strerror(err))


cdef class UpstreamPool:
    """Idle keep-alive connections to one queue socket (see ``fast.UpstreamPool``)."""

    cdef public str name
    cdef public str path
    cdef public Poller poller
    cdef public object factory
    cdef public list idle
    cdef sockaddr_un address
    cdef socklen_t address_len

    def __init__(self, str name, str path, Poller poller, factory):
        cdef bytes encoded = os.fsencode(path)
        self.name = name
        self.path = path
        self.poller = poller
        self.factory = factory
        self.idle = []
        if len(encoded) >= sizeof(self.address.sun_path):
            raise ValueError(f"queue socket path too long: {path}")
        memset(&self.address, 0, sizeof(self.address))
        self.address.sun_family = AF_UNIX
        memcpy(self.address.sun_path, PyBytes_AS_STRING(encoded), len(encoded))
        self.address_len = <socklen_t>(offsetof_sun_path() + len(encoded) + 1)

    cpdef object take(self):
        """An idle connection that is still open, or ``None``."""
        cdef Upstream conn
        while self.idle:
            conn = <Upstream>self.idle.pop()
            if not conn.closed:
                return conn
        return None

    cpdef put(self, Upstream conn):
        """Keep a connection whose exchange completed, for reuse."""
        conn.client = None
        if not conn.closed and len(self.idle) < C_POOL_MAX:
            self.idle.append(conn)
        else:
            conn.close()

    def connect(self):
        """A new connection to the queue, ready for a request (see ``fast.UpstreamPool``)."""
        cdef int fd = socket_c(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
        cdef int err
        if fd < 0:
            _raise_errno()
        while connect_c(fd, <sockaddr*>&self.address, self.address_len) < 0:
            err = errno
            if err == EINTR:
                continue
            c_close(fd)
            raise OSError(err, os.strerror(err))
        return self.factory(self, fd)

    def close(self):
        """Close every idle connection."""
        while self.idle:
            (<Upstream>self.idle.pop()).close()


cdef char _rbuf[65536]


cdef class Upstream:
    """One connection to a queue socket, on its non-blocking descriptor (see ``fast.Upstream``)."""

    cdef public UpstreamPool pool
    cdef public Poller poller
    cdef public int fd
    cdef public object client
    cdef public object parser
    cdef public bint closed
    cdef public bint reused
    cdef public Py_ssize_t received
    cdef public bytes fast_buf
    cdef public list wbuf
    cdef public Py_ssize_t wsize
    cdef public bint paused_client
    cdef public bint reading

    def __init__(self, UpstreamPool pool, int fd):
        self.pool = pool
        self.poller = pool.poller
        self.fd = fd
        self.client = None
        self.parser = None
        self.closed = False
        self.reused = False
        self.received = 0
        self.fast_buf = EMPTY
        self.wbuf = []
        self.wsize = 0
        self.paused_client = False
        self.reading = True
        self.poller.conns[fd] = self
        try:
            self.poller.watch(fd, True, False, EPOLL_CTL_ADD)
        except OSError:
            del self.poller.conns[fd]
            c_close(fd)
            self.closed = True
            raise

    cdef _readable(self):
        cdef ssize_t n
        cdef int err
        while True:
            n = recv_c(self.fd, _rbuf, sizeof(_rbuf), 0)
            if n >= 0:
                break
            err = errno
            if err == EINTR:
                continue
            if err == EAGAIN:  # (EWOULDBLOCK on Linux)
                return
            self._lost(OSError(err, os.strerror(err)))
            return
        if n == 0:
            client = self.client
            if client is not None:
                client.upstream_eof(self)
            self._lost(None)
            return
        data = PyBytes_FromStringAndSize(_rbuf, n)
        self.received += n
        client = self.client
        if client is None:
            self.close()
            return
        if isinstance(client, FastClient):
            (<FastClient>client).upstream_bytes(self, data)
        else:
            client.upstream_data(self, data)

    cdef _lost(self, exc):
        if self.closed:
            return
        self._shut()
        client = self.client
        if client is not None:
            client.upstream_lost(self)

    cdef Py_ssize_t _send(self, bytes data) except -2:
        """Bytes of ``data`` sent; -1 if the connection is broken (it is shut, and the client is
        told on the next loop iteration: the caller is in the middle of a decision)."""
        cdef ssize_t n
        cdef int err
        while True:
            n = send_c(self.fd, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), MSG_NOSIGNAL)
            if n >= 0:
                return n
            err = errno
            if err == EINTR:
                continue
            if err == EAGAIN:  # (EWOULDBLOCK on Linux)
                return 0
            self._shut()
            asyncio_get_running_loop().call_soon(self._told_lost, OSError(err, os.strerror(err)))
            return -1

    cpdef write(self, bytes data):
        """Send request bytes; what the socket does not take is sent when it can."""
        cdef Py_ssize_t sent
        if self.closed:
            return
        if self.wbuf:
            self.wbuf.append(data)
            self.wsize += PyBytes_GET_SIZE(data)
        else:
            sent = self._send(data)
            if sent < 0 or sent == PyBytes_GET_SIZE(data):
                return
            rest = data[sent:]
            self.wbuf.append(rest)
            self.wsize = PyBytes_GET_SIZE(rest)
            self.poller.watch(self.fd, self.reading, True, EPOLL_CTL_MOD)
        if self.wsize > HIGH_WATER and not self.paused_client and self.client is not None:
            self.paused_client = True
            self.client.pause_client_reading()

    cdef _writable(self):
        cdef Py_ssize_t sent
        cdef bytes data
        if not self.wbuf:
            return
        data = self.wbuf[0] if len(self.wbuf) == 1 else b"".join(self.wbuf)
        sent = self._send(data)
        if sent < 0:
            return
        if sent == PyBytes_GET_SIZE(data):
            self.wbuf = []
            self.wsize = 0
            self.poller.watch(self.fd, self.reading, False, EPOLL_CTL_MOD)
        else:
            self.wbuf = [data[sent:]]
            self.wsize = PyBytes_GET_SIZE(data) - sent
        if self.paused_client and self.wsize <= HIGH_WATER // 4:
            self.paused_client = False
            if self.client is not None:
                self.client.resume_client_reading()

    def _told_lost(self, exc):
        client = self.client
        if client is not None:
            client.upstream_lost(self)

    def pause_reading(self):
        """Stop reading the worker's bytes (the client is slow to take them)."""
        if self.reading and not self.closed:
            self.reading = False
            self.poller.watch(self.fd, False, bool(self.wbuf), EPOLL_CTL_MOD)

    def resume_reading(self):
        """Read the worker's bytes again."""
        if not self.reading and not self.closed:
            self.reading = True
            self.poller.watch(self.fd, True, bool(self.wbuf), EPOLL_CTL_MOD)

    cdef _shut(self):
        self.closed = True
        self.fast_buf = EMPTY
        self.wbuf = []
        if self.poller.conns.get(self.fd) is self:
            del self.poller.conns[self.fd]
        c_close(self.fd)  # which also takes it out of the epoll set

    cpdef close(self):
        """Close (without reuse, and without telling the client)."""
        if not self.closed:
            self._shut()


cdef class FastClient:
    """The base of a client connection (see ``fast.FastClient``)."""

    cdef public object app
    cdef public object transport
    cdef public str scheme
    cdef public str peer
    cdef public str local_ip
    cdef public long local_port
    cdef public object parser
    cdef public int state
    cdef public double since
    cdef public Py_ssize_t head_bytes
    cdef public object request
    cdef public object route
    cdef public object queue
    cdef public object upstream
    cdef public bint keep_alive
    cdef public long status
    cdef public Py_ssize_t sent
    cdef public double started
    cdef public double upstream_started
    cdef public bint closing
    cdef public bint fast_ok
    cdef public RouteCache cache
    cdef public Upstream fast_conn
    cdef public bytes fast_bytes
    cdef public bytes fast_out
    cdef public bytes fast_method
    cdef public bint fast_http10
    cdef public bytes fast_target
    cdef public RouteEntry fast_entry
    cdef public bytes tail
    cdef public RouteEntry tail_entry

    def __init__(self, app, str scheme):
        self.app = app
        self.scheme = scheme
        self.transport = None
        self.peer = ""
        self.local_ip = ""
        self.local_port = 0
        self.parser = None
        self.state = C_HEAD
        self.since = _now()
        self.head_bytes = 0
        self.request = None
        self.route = None
        self.queue = None
        self.upstream = None
        self.keep_alive = True
        self.status = 0
        self.sent = 0
        self.started = 0.0
        self.upstream_started = 0.0
        self.closing = False
        self.fast_ok = scheme == "http" and app.fast_enabled
        self.cache = None
        self.fast_conn = None
        self.fast_bytes = EMPTY
        self.fast_out = EMPTY
        self.fast_method = EMPTY
        self.fast_http10 = False
        self.fast_target = EMPTY
        self.fast_entry = None
        self.tail = EMPTY
        self.tail_entry = None

    # -- the client's bytes --------------------------------------------------------------------
    def data_received(self, data):
        if self.fast_ok and self.parser is None and self.fast_conn is None and not self.closing:
            if PyBytes_CheckExact(data) and self._fast_request(<bytes>data):
                return
        elif self.fast_conn is not None and not self.materialise():
            return
        self.slow_data(data)

    cdef bint _fast_request(self, bytes data) except -1:
        cdef const char* p = PyBytes_AS_STRING(data)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        cdef Py_ssize_t end, line_end, i, t_start, t_end, head_end, length, total, o
        cdef Py_ssize_t head_max
        cdef const char* found
        cdef bytes method
        cdef Scan scan
        cdef char* fields
        cdef bint http10, keep_alive
        cdef RouteEntry entry
        cdef RouteCache cache
        cdef Upstream conn
        cdef UpstreamPool pool
        cdef bytes out, host, target
        cdef char* w
        cdef char num[24]
        cdef Py_ssize_t num_len = 0
        cdef int framing = 0  # 1: a content-length line follows the fields
        app = self.app
        head_max = app.fast_head_max
        found = <const char*>memmem(p, n, b"\r\n\r\n", 4)
        if found == NULL:
            return False
        end = found - p
        if end + 4 > head_max:
            return False
        # The request line: method, SP, target, SP, HTTP/1.x, CRLF.
        i = 0
        while i < 8 and i < end and p[i] != 32:
            i += 1
        if i == 3 and memcmp(p, b"GET", 3) == 0:
            method = M_GET
        elif i == 4 and memcmp(p, b"POST", 4) == 0:
            method = M_POST
        elif i == 3 and memcmp(p, b"PUT", 3) == 0:
            method = M_PUT
        elif i == 6 and memcmp(p, b"DELETE", 6) == 0:
            method = M_DELETE
        elif i == 4 and memcmp(p, b"HEAD", 4) == 0:
            method = M_HEAD
        elif i == 7 and memcmp(p, b"OPTIONS", 7) == 0:
            method = M_OPTIONS
        elif i == 5 and memcmp(p, b"PATCH", 5) == 0:
            method = M_PATCH
        elif i == 5 and memcmp(p, b"TRACE", 5) == 0:
            method = M_TRACE
        else:
            return False
        i += 1
        t_start = i
        if i >= end or p[i] != 47:  # '/'
            return False
        while i < end and _TARGET[<unsigned char>p[i]]:
            i += 1
        t_end = i
        if i + 9 > end or memcmp(p + i, b" HTTP/1.", 8) != 0:
            return False
        if p[i + 8] == 48:
            http10 = True
        elif p[i + 8] == 49:
            http10 = False
        else:
            return False
        if p[i + 9] != 13 or p[i + 10] != 10:
            return False
        line_end = i + 9
        # The fields, in one pass: forwarded ones go to the scratch buffer as they will be sent.
        fields = _scratch_for(end - line_end + 16)
        if not _scan_fields(
            p, line_end + 2, end + 2, True, app.fast_max_fields, C_BUFFERED_BODY, fields, &scan
        ):
            return False
        if not scan.has_host or app.draining:
            return False
        # The route: this connection's last one, or the address's cache, or the general path's rules.
        cache = self.cache
        if cache is None or not cache.valid:
            cache = self.cache = app.route_cache(self.scheme, self.local_ip, self.local_port)
        host = PyBytes_FromStringAndSize(p + scan.host_at, scan.host_len)
        if (
            self.fast_entry is None
            and PyBytes_GET_SIZE(self.fast_target) == t_end - t_start
            and memcmp(PyBytes_AS_STRING(self.fast_target), p + t_start, t_end - t_start) == 0
        ):
            target = self.fast_target  # the same target as the last request: no copy
        else:
            target = PyBytes_FromStringAndSize(p + t_start, t_end - t_start)
        found_entry = cache.get(host, target)
        if found_entry is None:
            found_entry = self.route_miss(host, target)
            if found_entry is None:
                return False
            cache.put(host, target, found_entry)
        entry = <RouteEntry>found_entry
        if entry.limit >= 0 and entry.gstats.inflight >= entry.limit:
            return False
        head_end = end + 4
        length = 0
        if scan.length >= 0:
            length = scan.length
            if length > C_BUFFERED_BODY or length > app.max_body_bytes:
                return False
            if n != head_end + length:
                return False
            framing = 1
            num_len = _put_decimal(num, length)
        else:
            if n != head_end:
                return False
            if method is M_POST or method is M_PUT or method is M_PATCH:
                framing = 1
                num[0] = 48
                num_len = 1
        if http10:
            keep_alive = scan.options == 2
        else:
            keep_alive = not (scan.options & 1)
        pool = entry.pool
        conn = <Upstream>pool.take()
        if conn is None:
            try:
                conn = <Upstream>pool.connect()
            except OSError:
                return False
        else:
            conn.reused = True
        # Nothing can decline from here on.
        if self.tail_entry is not entry:
            peer = self.peer.encode()
            scheme = self.scheme.encode()
            self.tail = (
                b"x-forwarded-for: " + peer + b"\r\nx-forwarded-proto: " + scheme
                + b"\r\nx-forwarded-host: " + entry.host + b'\r\nforwarded: for="' + peer
                + b'";proto=' + scheme + b';host="' + entry.host + b'"\r\n\r\n'
            )
            self.tail_entry = entry
        total = (
            PyBytes_GET_SIZE(method) + PyBytes_GET_SIZE(entry.prefix) + scan.fields_len
            + (16 + num_len + 2 if framing else 0) + PyBytes_GET_SIZE(self.tail) + length
        )
        out = PyBytes_FromStringAndSize(NULL, total)
        w = PyBytes_AS_STRING(out)
        o = 0
        memcpy(w, PyBytes_AS_STRING(method), PyBytes_GET_SIZE(method))
        o += PyBytes_GET_SIZE(method)
        memcpy(w + o, PyBytes_AS_STRING(entry.prefix), PyBytes_GET_SIZE(entry.prefix))
        o += PyBytes_GET_SIZE(entry.prefix)
        memcpy(w + o, fields, scan.fields_len)
        o += scan.fields_len
        if framing:
            memcpy(w + o, b"content-length: ", 16)
            o += 16
            memcpy(w + o, num, num_len)
            o += num_len
            w[o] = 13
            w[o + 1] = 10
            o += 2
        memcpy(w + o, PyBytes_AS_STRING(self.tail), PyBytes_GET_SIZE(self.tail))
        o += PyBytes_GET_SIZE(self.tail)
        if length:
            memcpy(w + o, p + head_end, length)
        now = _now()
        self.state = C_WAIT
        self.since = self.started = self.upstream_started = now
        self.head_bytes = 0
        self.keep_alive = keep_alive
        self.status = 0
        self.sent = 0
        self.route = entry.route
        self.queue = entry.queue
        self.upstream = conn
        self.fast_conn = conn
        self.fast_bytes = data
        self.fast_method = method
        self.fast_http10 = http10
        self.fast_target = target
        self.fast_entry = entry
        entry.qstats.requests += 1
        entry.qstats.inflight += 1
        entry.gstats.inflight += 1
        self.fast_out = out
        conn.client = self
        conn.received = 0
        conn.write(out)
        return True

    # -- the worker's bytes --------------------------------------------------------------------
    def upstream_data(self, conn, data):
        """Bytes from the upstream connection serving this client."""
        self.upstream_bytes(<Upstream?>conn, data)

    cdef upstream_bytes(self, Upstream conn, object data):
        cdef bytes buf
        cdef int verdict
        if conn is self.fast_conn and PyBytes_CheckExact(data):
            if PyBytes_GET_SIZE(conn.fast_buf):
                buf = conn.fast_buf + <bytes>data
            else:
                buf = <bytes>data
            verdict = self._fast_response(conn, buf)
            if verdict == R_DONE:
                return
            if verdict == R_MORE and PyBytes_GET_SIZE(buf) <= C_FAST_RESPONSE_MAX:
                conn.fast_buf = buf
                return
            conn.fast_buf = EMPTY
            if not self.materialise():
                return
            data = buf
        elif conn is self.fast_conn:
            if not self.materialise():
                return
        self.slow_upstream_data(conn, data)

    cdef int _fast_response(self, Upstream conn, bytes buf) except -1:
        cdef const char* p = PyBytes_AS_STRING(buf)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
        cdef Py_ssize_t end, i, line_end, reason_start, head_end, have, length, total, o
        cdef const char* found
        cdef Scan scan
        cdef char* fields
        cdef bint worker_keeps, keep_alive, http10_worker
        cdef char num[24]
        cdef Py_ssize_t num_len
        cdef long status
        cdef bytes out
        cdef char* w
        cdef RouteEntry entry
        cdef double now, duration_ms
        found = <const char*>memmem(p, n, b"\r\n\r\n", 4)
        if found == NULL:
            return R_MORE if n < C_FAST_RESPONSE_HEAD_MAX else R_DECLINE
        end = found - p
        if end + 4 > C_FAST_RESPONSE_HEAD_MAX or self.fast_method is M_HEAD:
            return R_DECLINE
        # The status line: HTTP/1.x SP 3DIGIT SP reason CRLF, a final status with a body.
        if end < 13 or memcmp(p, b"HTTP/1.", 7) != 0:
            return R_DECLINE
        if p[7] == 48:
            http10_worker = True
        elif p[7] == 49:
            http10_worker = False
        else:
            return R_DECLINE
        if p[8] != 32 or not (50 <= <unsigned char>p[9] <= 53):
            return R_DECLINE
        if not (48 <= <unsigned char>p[10] <= 57) or not (48 <= <unsigned char>p[11] <= 57):
            return R_DECLINE
        if p[12] != 32:
            return R_DECLINE
        status = (p[9] - 48) * 100 + (p[10] - 48) * 10 + (p[11] - 48)
        if status == 204 or status == 304:
            return R_DECLINE
        i = 13
        reason_start = i
        while i < end and _VALUE[<unsigned char>p[i]]:
            i += 1
        if p[i] != 13 or p[i + 1] != 10:
            return R_DECLINE
        line_end = i
        fields = _scratch_for(end - line_end + 16)
        if not _scan_fields(
            p, line_end + 2, end + 2, False, C_FAST_MAX_FIELDS, C_FAST_RESPONSE_MAX, fields, &scan
        ):
            return R_DECLINE
        if scan.length < 0 or scan.length > C_FAST_RESPONSE_MAX:
            return R_DECLINE  # no length (a body until the close), or too long to hold: streamed
        length = scan.length
        head_end = end + 4
        have = n - head_end
        if have < length:
            return R_MORE
        if have > length:
            return R_DECLINE
        if http10_worker:
            worker_keeps = scan.options == 2
        else:
            worker_keeps = not (scan.options & 1)
        app = self.app
        keep_alive = self.keep_alive and not app.draining
        num_len = _put_decimal(num, length)
        # "HTTP/1.1 " + code + " " + reason + CRLF + fields + content-length + connection + CRLF + body
        total = (
            9 + 3 + 1 + (line_end - reason_start) + 2 + scan.fields_len + 16 + num_len + 2
            + (19 if not keep_alive else (24 if self.fast_http10 else 0)) + 2 + length
        )
        out = PyBytes_FromStringAndSize(NULL, total)
        w = PyBytes_AS_STRING(out)
        memcpy(w, b"HTTP/1.1 ", 9)
        memcpy(w + 9, p + 9, 3)
        w[12] = 32
        o = 13
        memcpy(w + o, p + reason_start, line_end - reason_start)
        o += line_end - reason_start
        w[o] = 13
        w[o + 1] = 10
        o += 2
        memcpy(w + o, fields, scan.fields_len)
        o += scan.fields_len
        memcpy(w + o, b"content-length: ", 16)
        o += 16
        memcpy(w + o, num, num_len)
        o += num_len
        w[o] = 13
        w[o + 1] = 10
        o += 2
        if not keep_alive:
            memcpy(w + o, b"connection: close\r\n", 19)
            o += 19
        elif self.fast_http10:
            memcpy(w + o, b"connection: keep-alive\r\n", 24)
            o += 24
        w[o] = 13
        w[o + 1] = 10
        o += 2
        if length:
            memcpy(w + o, p + head_end, length)
        self.status = status
        self.sent = total
        # The exchange is over. A worker that closes its connections waits for ours to close
        # (gunicorn's sync worker lingers until it reads our EOF): close it before anything else.
        self.fast_conn = None
        self.fast_bytes = self.fast_out = EMPTY
        self.upstream = None
        conn.fast_buf = EMPTY
        if worker_keeps:
            conn.pool.put(conn)
        else:
            conn.client = None
            conn.close()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(out)
        now = _now()
        entry = self.fast_entry
        duration_ms = (now - self.started) * 1000.0
        entry.qstats.count(status, duration_ms, duration_ms)
        entry.gstats.count(status, duration_ms, duration_ms)
        entry.qstats.inflight -= 1
        if entry.gstats.inflight > 0:
            entry.gstats.inflight -= 1
        self.queue = None
        self.route = None
        if app.access_enabled:
            records = app.log_records
            PyList_Append(
                records,
                (now, self.peer, entry.host, self.fast_method, self.fast_target, status, total,
                 duration_ms, entry.queue_name, entry.group, duration_ms),
            )
            if len(records) >= 512:
                app.flush_log()
        self.fast_entry = None
        if not keep_alive:
            self._close()
        else:
            self.state = C_IDLE
            self.since = now
        return R_DONE


# -- the access log --------------------------------------------------------------------------------

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
