# The compiled core's client side: included by ``_fast.pyx`` (one module; see its docstring).
#
# Owns: ``FastClient``, the base of a client connection and its fast path (one complete common
# request forwarded in one write, one complete common response relayed in one write), and the
# clock reading it uses (the app's injected clock, ``app.now``; CLOCK_MONOTONIC read directly when
# that is ``time.monotonic``, as it is outside tests). The pure-Python twin is ``FastClient`` in ``fast.py``; every branch here
# has its counterpart there, in the same order.
# Uses the scan (``_scan.pxi``), the upstream side (``_upstream.pxi``) and the constants, stats and
# route cache of ``_fast.pyx``.

# What a response from the fast path tells the caller.
cdef enum:
    R_DONE = 0
    R_MORE = 1
    R_DECLINE = 2


cdef extern from "string.h" nogil:
    void* memmem(const void* haystack, size_t haystacklen, const void* needle, size_t needlelen)

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk_id, timespec* tp)
    enum: CLOCK_MONOTONIC


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


cdef class FastClient:
    """The base of a client connection (see ``fast.FastClient``)."""

    cdef public object app
    cdef public object transport
    cdef public str scheme
    cdef public str peer
    cdef public str local_ip
    cdef public long local_port
    cdef public object parser
    cdef int _state  # a Phase value; Python sees the Phase member (the ``state`` property)
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
    cdef object _clock  # the app's clock (``app.now``)
    cdef bint _real_clock  # it is time.monotonic: read CLOCK_MONOTONIC directly, as it does

    def __init__(self, app, str scheme):
        self.app = app
        self.scheme = scheme
        self.transport = None
        self.peer = ""
        self.local_ip = ""
        self.local_port = 0
        self.parser = None
        self._clock = app.now
        self._real_clock = self._clock is _monotonic
        self._state = C_HEAD
        self.since = self._clock_now()
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

    @property
    def state(self):
        """The connection's phase (a ``Phase`` member)."""
        return _PHASES[self._state]

    @state.setter
    def state(self, int value):
        if not C_HEAD <= value <= C_CLOSING:
            raise ValueError(f"not a connection phase: {value}")
        self._state = value

    cdef inline double _clock_now(self) except? -1.0:
        """One reading of the app's clock (the monotonic clock without a Python call, unless a
        test injected another)."""
        if self._real_clock:
            return _now()
        return self._clock()

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
        now = self._clock_now()
        self._state = C_WAIT
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
        now = self._clock_now()
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
            self._state = C_IDLE
            self.since = now
        return R_DONE
