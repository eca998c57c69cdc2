"""How many connections wait in a listening Unix socket's accept queue, read from the kernel.

Owns: one ``NETLINK_SOCK_DIAG`` request (``unix_diag``, ``UDIAG_SHOW_RQLEN``) for one socket inode.
For a listening socket the kernel answers with the connections not yet accepted and the backlog
(what ``ss -xl`` shows as Recv-Q and Send-Q). That is a queue's depth: requests the listener has
delivered that no worker has taken yet. Must not import anything from orchestrator.
"""

from __future__ import annotations

import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLMSG_ERROR = 0x2
UDIAG_SHOW_RQLEN = 0x10
UNIX_DIAG_RQLEN = 4
NO_COOKIE = 0xFFFFFFFF
_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
_REQUEST = struct.Struct("=BBHIIIII")  # struct unix_diag_req
_MESSAGE = struct.Struct("=BBBBIII")  # struct unix_diag_msg
_ATTR = struct.Struct("=HH")  # struct rtattr
_RQLEN = struct.Struct("=II")  # struct unix_diag_rqlen


def accept_queue(inode: int) -> tuple[int, int] | None:
    """``(waiting, backlog)`` of the listening Unix socket with this inode, or ``None`` when the
    kernel cannot say (no ``unix_diag`` support, the socket is gone)."""
    request = _REQUEST.pack(
        socket.AF_UNIX, 0, 0, 0xFFFFFFFF, inode, UDIAG_SHOW_RQLEN, NO_COOKIE, NO_COOKIE
    )
    header = _HEADER.pack(_HEADER.size + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0)
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as sock:
            sock.settimeout(1.0)
            sock.sendto(header + request, (0, 0))
            data = sock.recv(65536)
    except OSError:
        return None
    return parse_reply(data)


def parse_reply(data: bytes) -> tuple[int, int] | None:
    """The ``UNIX_DIAG_RQLEN`` attribute of one reply, or ``None`` (an error, or no such attribute)."""
    if len(data) < _HEADER.size:
        return None
    length, kind, _flags, _seq, _pid = _HEADER.unpack_from(data)
    if kind == NLMSG_ERROR or kind != SOCK_DIAG_BY_FAMILY:
        return None
    offset = _HEADER.size + _MESSAGE.size
    end = min(length, len(data))
    while offset + _ATTR.size <= end:
        size, attr = _ATTR.unpack_from(data, offset)
        if size < _ATTR.size:
            return None
        if attr == UNIX_DIAG_RQLEN and offset + _ATTR.size + _RQLEN.size <= end:
            waiting, backlog = _RQLEN.unpack_from(data, offset + _ATTR.size)
            return int(waiting), int(backlog)
        offset += (size + 3) & ~3
    return None
