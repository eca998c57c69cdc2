"""A queue's depth read from the kernel (``sock_diag``): real listening Unix sockets, real clients."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

from orchestrator.backends.linux.queues import QueueSocket
from orchestrator.backends.linux.sockdiag import accept_queue, parse_reply


def test_the_accept_queue_counts_connections_no_one_has_accepted(tmp_path: Path) -> None:
    """Three clients connect to a listening socket with backlog 16: the kernel reports 3 waiting;
    accepting one leaves 2."""
    path = str(tmp_path / "q.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(16)
        inode = os.fstat(server.fileno()).st_ino
        assert (0, 16) == accept_queue(inode)
        clients = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(3)]
        try:
            for client in clients:
                client.connect(path)
            assert (3, 16) == accept_queue(inode)
            queue = QueueSocket("q", path, server, os.stat(path).st_ino, 16)
            assert 3 == queue.waiting()
            conn, _ = server.accept()
            conn.close()
            assert 2 == queue.waiting()
        finally:
            for client in clients:
                client.close()


def test_a_socket_that_does_not_exist_has_no_answer() -> None:
    """An inode no socket has: the kernel answers with an error, which is None, not a count."""
    assert accept_queue(0xFFFFFFF0) is None


def test_replies_without_the_attribute_or_with_an_error_are_none() -> None:
    """An NLMSG_ERROR reply, a reply too short for a header, and a diag message without
    UNIX_DIAG_RQLEN are all 'cannot say'."""
    error = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -2) + bytes(16)
    assert parse_reply(error) is None
    assert parse_reply(b"\x00" * 8) is None
    bare = struct.pack("=IHHII", 32, 20, 0, 1, 0) + struct.pack("=BBBBIII", 1, 1, 10, 0, 7, 0, 0)
    assert parse_reply(bare) is None
    with_rqlen = bare[:0] + struct.pack("=IHHII", 44, 20, 0, 1, 0) + bare[16:]
    with_rqlen += struct.pack("=HH", 12, 4) + struct.pack("=II", 5, 100)
    assert (5, 100) == parse_reply(with_rqlen)
