# The compiled core's upstream side: included by ``_fast.pyx`` (one module; see its docstring).
#
# Owns: ``Poller`` (one epoll set for every connection to a queue socket), ``UpstreamPool`` (idle
# keep-alive connections to one queue socket, connected with the C library) and ``Upstream`` (one
# such connection, on its raw descriptor), with the epoll and socket declarations they need. The
# pure-Python twin is ``upstream.py``; every branch here has its counterpart there.
# Uses ``FastClient`` (``_client.pxi``) to hand a worker's bytes to the client it serves.

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
