"""Listening sockets: inherited by socket activation (LISTEN_FDS), or bound for --bind and --listen.

Owns: the sd_listen_fds(3) contract — honour the variables only when ``LISTEN_PID`` is our pid, mark the
fds close-on-exec, unset the variables whatever the outcome so children never misread them — plus the
check that each inherited fd is a listening stream socket, and parsing and binding ``--bind`` and
``--listen`` addresses.
An inherited socket is shared with the controller and sibling workers: we only ever ``close()`` our own
copy and never call ``shutdown()`` on it, which would cut the queue for everyone.
Must not import anything from ``orchestrator`` except ``orchestrator.runner.errors``.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from orchestrator.runner.errors import BootError

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START
LISTEN_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PIDFDID")
DEFAULT_BACKLOG = 2048  # net.core.somaxconn is 4096 on our hosts; larger values are clamped anyway

_STREAM_FAMILIES = frozenset(
    f for f in (getattr(socket, "AF_UNIX", None), socket.AF_INET, socket.AF_INET6) if f is not None
)


@dataclass(frozen=True, slots=True)
class InheritedFd:
    """One fd passed by socket activation and its ``LISTEN_FDNAMES`` entry (the queue name)."""

    fd: int
    name: str


@dataclass(frozen=True, slots=True)
class BindAddress:
    """A ``--bind`` value: a Unix socket path, or a host and TCP port (port 0 picks a free one)."""

    path: str | None = None
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(slots=True)
class Listener:
    """A non-blocking listening socket we serve from; ``unlink_path`` is a socket file we created."""

    sock: socket.socket
    name: str
    unlink_path: str | None = None

    def close(self) -> None:
        """Close our copy only (never ``shutdown()``), and remove the socket file if we made it."""
        self.sock.close()
        if self.unlink_path is not None:
            try:
                os.unlink(self.unlink_path)
            except OSError:
                pass
            self.unlink_path = None


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def parse_listen_env(
    env: Mapping[str, str], pid: int, pidfd_id: int | None = None
) -> tuple[InheritedFd, ...]:
    """Decide which fds socket activation handed to process ``pid``.

    Args:
        env: the environment to read (not modified).
        pid: our pid; the variables are ignored unless ``LISTEN_PID`` equals it.
        pidfd_id: our pidfd inode number, when the platform has one; checked against ``LISTEN_PIDFDID``
            when both are present (newer systemd guards against pid reuse that way).

    Returns:
        The fds in order, starting at 3; empty when the variables are absent or meant for another process.

    Raises:
        BootError: the variables are meant for us but malformed.
    """
    pid_text = env.get("LISTEN_PID")
    count_text = env.get("LISTEN_FDS")
    if pid_text is None or count_text is None:
        return ()
    # A LISTEN_PID that is not ours (or not a number) was inherited by accident: ignore, as systemd does.
    if not _is_ascii_digits(pid_text) or int(pid_text) != pid:
        return ()
    pidfd_text = env.get("LISTEN_PIDFDID")
    if pidfd_text is not None and pidfd_id is not None and pidfd_text != str(pidfd_id):
        return ()
    if not _is_ascii_digits(count_text):
        raise BootError(f"LISTEN_FDS={count_text!r} is not a number")
    count = int(count_text)
    names_text = env.get("LISTEN_FDNAMES")
    names = names_text.split(":") if names_text is not None else ["unknown"] * count
    if count == 0:
        return ()
    if len(names) != count:
        raise BootError(f"LISTEN_FDNAMES names {len(names)} fds but LISTEN_FDS={count}")
    return tuple(InheritedFd(LISTEN_FDS_START + i, name) for i, name in enumerate(names))


def _own_pidfd_id() -> int | None:
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        fd = pidfd_open(os.getpid())
    except OSError:
        return None
    try:
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


def adopt_listener(fd: int, name: str) -> Listener:
    """Wrap an inherited fd, checking it is a listening stream socket of a supported family.

    Raises:
        BootError: the fd is closed, not a socket, not a stream socket, or not listening.
    """
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise BootError(f"inherited fd {fd} ({name}) is not a socket: {exc.strerror}") from None
    if sock.type != socket.SOCK_STREAM or sock.family not in _STREAM_FAMILIES:
        sock.detach()
        raise BootError(f"inherited fd {fd} ({name}) is not a Unix or TCP stream socket")
    accepting = getattr(socket, "SO_ACCEPTCONN", None)
    if accepting is not None and not sock.getsockopt(socket.SOL_SOCKET, accepting):
        sock.detach()
        raise BootError(f"inherited fd {fd} ({name}) is not a listening socket")
    # O_NONBLOCK lives on the shared open file description, so siblings see it too. That is what
    # gunicorn does as well, and it is required: siblings race for each connection, and a blocking
    # accept() that lost the race would stall our loop.
    sock.setblocking(False)
    return Listener(sock, name)


def inherit_listeners(environ: MutableMapping[str, str] | None = None) -> list[Listener]:
    """Take the listening sockets passed by socket activation, as sd_listen_fds(1) does.

    Args:
        environ: the environment to read and clean; ``os.environ`` by default.

    Returns:
        One listener per inherited fd (none when the variables are absent or not for us).

    Raises:
        BootError: the variables are malformed or an fd is not a listening stream socket.
    """
    env = os.environ if environ is None else environ
    try:
        pidfd_id = _own_pidfd_id() if "LISTEN_PIDFDID" in env else None
        fds = parse_listen_env(env, os.getpid(), pidfd_id)
    finally:
        for var in LISTEN_VARIABLES:
            env.pop(var, None)
    listeners = []
    for item in fds:
        # Close-on-exec first, so nothing the app spawns inherits the queue.
        try:
            os.set_inheritable(item.fd, False)
        except OSError:
            raise BootError(f"inherited fd {item.fd} ({item.name}) is not open") from None
        listeners.append(adopt_listener(item.fd, item.name))
    return listeners


def parse_bind(text: str) -> BindAddress:
    """Parse ``unix:PATH`` or ``HOST:PORT`` (IPv6 hosts in brackets).

    Raises:
        ValueError: the text is neither form.
    """
    if text.startswith("unix:"):
        path = text.removeprefix("unix:")
        if not path:
            raise ValueError("unix: needs a socket path")
        return BindAddress(path=path)
    return _parse_host_port(text, forms="unix:PATH or HOST:PORT")


def parse_listen(text: str) -> BindAddress:
    """Parse a ``--listen`` value: a TCP ``HOST:PORT`` only (IPv6 hosts in brackets).

    Raises:
        ValueError: the text is not ``HOST:PORT``, or the port is not 0-65535.
    """
    if text.startswith("unix:"):
        # --listen exists for containers, where the probes and the Service reach the pod over TCP;
        # a Unix socket by hand is what --bind is for.
        raise ValueError(f"{text!r}: --listen takes a TCP HOST:PORT (use --bind for unix:PATH)")
    return _parse_host_port(text, forms="HOST:PORT")


def _parse_host_port(text: str, *, forms: str) -> BindAddress:
    host, sep, port = text.rpartition(":")
    if not sep or not _is_ascii_digits(port):
        raise ValueError(f"{text!r} is not {forms}")
    if int(port) > 65535:
        raise ValueError(f"{text!r}: port {int(port)} is out of range (0-65535)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: put an IPv6 address in brackets, e.g. [::1]:8000")
    if not host:
        raise ValueError(f"{text!r}: the host is missing (use 0.0.0.0 for all interfaces)")
    return BindAddress(host=host, port=int(port))


def bind_listener(address: BindAddress, backlog: int = DEFAULT_BACKLOG) -> Listener:
    """Create, bind and listen on ``address`` (for running the worker by hand).

    Raises:
        OSError: the address cannot be bound.
    """
    if address.path is not None:
        try:
            if stat.S_ISSOCK(os.stat(address.path).st_mode):
                os.unlink(address.path)  # a stale socket from a previous run, like gunicorn does
        except FileNotFoundError:
            pass
        unix = getattr(socket, "AF_UNIX", None)  # absent from Python's socket module on Windows
        if unix is None:
            raise OSError(f"{address}: Unix sockets are not available on this platform")
        sock = socket.socket(unix, socket.SOCK_STREAM)
        try:
            sock.bind(address.path)
            sock.listen(backlog)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return Listener(sock, str(address), unlink_path=address.path)
    family, _, _, _, sockaddr = socket.getaddrinfo(
        address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if sys.platform != "win32":  # on Windows SO_REUSEADDR lets another process steal the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return Listener(sock, describe_address(sock))


def describe_address(sock: socket.socket) -> str:
    """``unix:PATH`` or ``HOST:PORT`` for a bound socket, as logs and ``--bind`` spell it."""
    name = sock.getsockname()
    if isinstance(name, tuple):
        host = str(name[0])
        return f"[{host}]:{name[1]}" if ":" in host else f"{host}:{name[1]}"
    if isinstance(name, bytes):  # abstract Unix names come back as bytes
        return "unix:@" + name[1:].decode("latin-1")
    return f"unix:{name}"
