"""The benchmark's minimal worker: uvloop + httptools answering every request with a tiny body.

Serves the inherited queue socket (LISTEN_FDS, fd 3), or ``--uds PATH``, or ``--port N``; HTTP/1.1
keep-alive; no framework, so the front end's cost dominates the measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket

import httptools
import uvloop

BODY = b"hello, world\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY
)
CLOSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
    % len(BODY)
    + BODY
)


class Responder(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_complete(self) -> None:
        if self.parser.should_keep_alive():
            self.transport.write(RESPONSE)
        else:
            self.transport.write(CLOSE)
            self.transport.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uds")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    uvloop.install()
    loop = asyncio.new_event_loop()
    if args.uds:
        server = loop.run_until_complete(loop.create_unix_server(Responder, args.uds, backlog=4096))
        os.chmod(args.uds, 0o666)
    elif args.port:
        server = loop.run_until_complete(
            loop.create_server(Responder, "127.0.0.1", args.port, backlog=4096)
        )
    else:
        assert os.environ.get("LISTEN_PID") == str(os.getpid()), "no inherited socket"
        sock = socket.socket(fileno=3)
        server = loop.run_until_complete(loop.create_unix_server(Responder, sock=sock))
        if os.environ.get("NOTIFY_SOCKET"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as note:
                note.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
    del server
    loop.run_forever()


if __name__ == "__main__":
    main()
