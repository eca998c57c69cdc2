"""A deliberately broken worker: it answers with malformed framing chosen by the request path.

Serves the listening socket inherited as fd 3 (``LISTEN_FDS``), one connection at a time:
``/bad/clte`` answers with both Content-Length and Transfer-Encoding, ``/bad/cl`` with an invalid
Content-Length, ``/bad/lf`` with a bare-LF status line, anything else with a valid 200.
"""

from __future__ import annotations

import os
import socket

ANSWERS = {
    b"/bad/clte": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"/bad/cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello",
    b"/bad/lf": b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
}
GOOD = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood"


def main() -> None:
    """Accept and answer forever."""
    assert os.environ.get("LISTEN_PID") == str(os.getpid())
    listener = socket.socket(fileno=3)
    if os.environ.get("NOTIFY_SOCKET"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as note:
            note.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
    while True:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            path = data.split(b" ", 2)[1] if data.count(b" ") >= 2 else b"/"
            conn.sendall(ANSWERS.get(path, GOOD))


if __name__ == "__main__":
    main()
