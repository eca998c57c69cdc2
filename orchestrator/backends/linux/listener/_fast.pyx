# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=False
"""The listener's hot path, compiled: the same names and behaviour as ``fast.py``, its pure-Python twin.

Owns: what ``fast.py`` and ``upstream.py`` own (``FastClient``, ``Upstream``, ``UpstreamPool``,
``Poller``, ``RouteEntry``, ``RouteCache``, ``QueueStats``, the connection phases), with the scanning
of heads and the writing of forwarded heads done over C buffers in one pass. ``fast.py`` (and
``upstream.py``) are the specification: read them first; every branch here has its counterpart
there, in the same order, and ``tests/integration/listener/test_twins.py`` compares the two byte for
byte.

One extension module, in several files joined by ``include`` (a textual inclusion: one C module, one
namespace, as if written in one file). This file holds the module's constants, ``QueueStats``,
``RouteEntry`` and ``RouteCache``, and includes, in this order:

- ``_scan.pxi``: the character classes and the one-pass scan of a head's field lines;
- ``_upstream.pxi``: ``Poller``, ``UpstreamPool`` and ``Upstream`` (the twin of ``upstream.py``);
- ``_client.pxi``: ``FastClient``, the fast path of a client connection;
- ``_log.pxi``: the access log's formatting (``format_log``, ``format_access``).

The ``.pxi`` files are shipped beside this one (package data) so that an sdist compiles.

Must not import: ``proxy`` or ``app`` (they build on this module).
"""

import os
from asyncio import get_running_loop as asyncio_get_running_loop
from time import monotonic as _monotonic

from orchestrator.backends.linux.listener.phase import Phase

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

IMPLEMENTATION = "compiled"

# The connection phases: C ints inside this module, ``Phase`` members for Python (the ``state``
# property of ``FastClient`` turns one into the other).
HEAD, BODY, WAIT, IDLE, CLOSING = Phase.HEAD, Phase.BODY, Phase.WAIT, Phase.IDLE, Phase.CLOSING

cdef enum:
    C_HEAD = 0
    C_BODY = 1
    C_WAIT = 2
    C_IDLE = 3
    C_CLOSING = 4

cdef tuple _PHASES = tuple(Phase)
if [int(p) for p in _PHASES] != [C_HEAD, C_BODY, C_WAIT, C_IDLE, C_CLOSING]:
    raise ImportError("_fast's C phases do not match listener.phase.Phase: rebuild the module")

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

cdef bytes M_GET = b"GET"
cdef bytes M_POST = b"POST"
cdef bytes M_PUT = b"PUT"
cdef bytes M_DELETE = b"DELETE"
cdef bytes M_HEAD = b"HEAD"
cdef bytes M_OPTIONS = b"OPTIONS"
cdef bytes M_PATCH = b"PATCH"
cdef bytes M_TRACE = b"TRACE"
cdef bytes EMPTY = b""


include "_scan.pxi"


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


include "_upstream.pxi"

include "_client.pxi"

include "_log.pxi"
