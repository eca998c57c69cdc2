"""Health probes: an HTTP GET sent through a queue socket, off the main thread.

Owns: ``probe`` (one blocking probe) and ``Prober`` (a small thread pool whose results come back to
the main loop through a queue and a wake-up pipe).
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's outcome."""

    pool: str
    ok: bool
    detail: str
    duration_s: float


def probe(path: str, http_path: str, timeout_s: float) -> tuple[bool, str]:
    """GET ``http_path`` through the queue socket at ``path``; 2xx and 3xx are healthy."""
    start = time.monotonic()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(path)
            sock.sendall(
                f"GET {http_path} HTTP/1.1\r\nHost: localhost\r\n"
                "User-Agent: orchestrator-health\r\nConnection: close\r\n\r\n".encode()
            )
            head = b""
            while b"\r\n" not in head:
                left = timeout_s - (time.monotonic() - start)
                if left <= 0:
                    return False, f"no answer within {timeout_s:g}s"
                sock.settimeout(left)
                chunk = sock.recv(1024)
                if not chunk:
                    return False, "connection closed without an answer"
                head += chunk
    except TimeoutError:
        return False, f"no answer within {timeout_s:g}s"
    except OSError as exc:
        return False, f"cannot connect: {exc.strerror or exc}"
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return False, f"not an HTTP answer: {status_line[:60]!r}"
    code = int(parts[1])
    return 200 <= code < 400, f"HTTP {code}"


class Prober:
    """Runs probes in the background and hands results to the main loop."""

    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")
        self._results: queue.SimpleQueue[ProbeResult] = queue.SimpleQueue()
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self.pending: set[str] = set()

    def fileno(self) -> int:
        """Readable when results are waiting."""
        return self._read

    def submit(self, pool: str, path: str, http_path: str, timeout_s: float) -> None:
        """Start a probe of ``pool`` unless one is already running."""
        if pool in self.pending:
            return
        self.pending.add(pool)

        def run() -> None:
            start = time.monotonic()
            ok, detail = probe(path, http_path, timeout_s)
            self._results.put(ProbeResult(pool, ok, detail, time.monotonic() - start))
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._write, b"!")

        self._pool.submit(run)

    def drain(self, handle: Callable[[ProbeResult], None]) -> None:
        """Hand every finished result to ``handle``."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass
        while True:
            try:
                result = self._results.get_nowait()
            except queue.Empty:
                return
            self.pending.discard(result.pool)
            handle(result)

    def close(self) -> None:
        """Stop the threads (running probes finish within their timeout)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        os.close(self._read)
        os.close(self._write)
