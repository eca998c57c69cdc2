"""Captured output: every worker's and listener's stdout and stderr, as tagged lines.

Owns: ``OutputHub`` (the ``backends.output.OutputSink`` the daemon gives its backend), ``Ring``
(a pool's recent lines, bounded by count and bytes), ``LineSplitter`` (bytes to lines, each cut at
``MAX_LINE_BYTES``), ``OutputLine``, ``format_line`` and ``journal_stream``.

One reader thread waits on every pipe at once (``selectors``, non-blocking reads), so a process
that floods its output costs the main loop nothing but a share of the GIL, and the pipes keep
draining, so no writer blocks for long: a flooding worker's oldest lines leave its own ring, never
another pool's. The echo of each line to the controller's stderr goes through a second thread and
a bounded queue, so a slow stderr (a stuck journal) drops echoed lines, counted and reported,
rather than stopping the reader. ``orchestrator logs`` reads the rings (``lines``) and follows new
lines (``subscribe``) from the admin API's threads.

Must not import a backend implementation, ``reconcile`` or ``cli``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import selectors
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

#: A longer line is cut here (and marked): one line must not take a whole ring.
MAX_LINE_BYTES = 16 * 1024
#: Each pool's ring: its most recent lines, at most this many and this many bytes of text.
RING_LINES = 5000
RING_BYTES = 2 * 1024 * 1024
#: Lines waiting to be echoed on the controller's stderr; beyond it the oldest are dropped.
ECHO_BACKLOG = 20_000
#: Pipe size asked for each stdout and stderr pipe: room for a burst while the reader is busy.
PIPE_BYTES = 256 * 1024
READ_BYTES = 64 * 1024
CUT_MARK = " [line cut]"
#: The name the listener's output goes by (``logs listener``); a pool of that name is
#: ``worker/listener``.
LISTENER = "listener"

#: syslog priorities for the journal: stderr is an error, stdout information.
PRIORITY = {"stderr": "<3>", "stdout": "<6>"}


@dataclass(frozen=True, slots=True)
class OutputLine:
    """One line a process wrote: its pool (``None``: the listener), pid, stream and wall time."""

    seq: int
    ts: float
    pool: str | None
    pid: int
    stream: str
    text: str

    @property
    def tag(self) -> str:
        """The name the line is shown under: the pool's, or ``listener``."""
        return self.pool if self.pool is not None else LISTENER

    def record(self) -> dict[str, object]:
        """The line as a JSON-able record (what ``logs --json`` and the admin API carry)."""
        return {
            "ts": round(self.ts, 3),
            "pool": self.tag,
            "pid": self.pid,
            "stream": self.stream,
            "line": self.text,
        }


def format_line(line: OutputLine, fmt: str, journal: bool = False) -> str:
    """A captured line as the controller logs it, without the newline.

    ``text``: ``pool[pid]: line``. ``json``: one object with ``ts``, ``event`` (``output``),
    ``pool``, ``pid``, ``stream`` and ``line``; the listener's own structured lines (JSON objects
    it writes itself, ``{"event":"listener_...``) stay one object, with ``pool`` and ``stream``
    added. On the journal each line starts with its priority (``<3>`` stderr, ``<6>`` stdout), so
    a process cannot choose its own by printing one.
    """
    if fmt == "json":
        text = line.text
        if line.pool is None and text.startswith('{"event":"listener_') and text.endswith("}"):
            out = f'{text[:-1]},"pool":"{LISTENER}","stream":"{line.stream}"}}'
        else:
            out = json.dumps(
                {"ts": round(line.ts, 3), "event": "output", **line.record()},
                separators=(",", ":"),
            )
    else:
        out = f"{line.tag}[{line.pid}]: {line.text}"
    return PRIORITY[line.stream] + out if journal else out


def journal_stream(environ: Mapping[str, str], fd: int = 2) -> bool:
    """Whether ``fd`` is the journal's stream: ``JOURNAL_STREAM`` (``DEV:INODE``, set by systemd)
    names the device and inode of the very file ``fd`` is. A child that inherited the variable
    but writes elsewhere (redirected) is not on the journal (systemd.exec(5) asks for this check)."""
    value = environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    try:
        st = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (OSError, ValueError):
        return False


class LineSplitter:
    """Bytes from one pipe to lines: whole lines as they complete, a line longer than
    ``max_bytes`` cut there (marked) and the rest of it dropped up to its newline."""

    __slots__ = ("_buf", "_skipping", "max_bytes")

    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buf = b""
        self._skipping = False  # inside a line already cut: drop up to its newline

    def feed(self, data: bytes) -> list[str]:
        """The lines ``data`` completes (without their newlines)."""
        out: list[str] = []
        buf = self._buf + data
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            if self._skipping:
                self._skipping = False
            else:
                out.append(self._text(buf[start:end]))
            start = end + 1
        rest = buf[start:]
        if self._skipping:
            rest = b""
        elif len(rest) > self.max_bytes:
            out.append(self._text(rest))  # cut and marked there
            rest = b""
            self._skipping = True
        self._buf = rest
        return out

    def finish(self) -> list[str]:
        """What is left at end of file (a last line without a newline)."""
        rest, self._buf = self._buf, b""
        return [self._text(rest)] if rest and not self._skipping else []

    def _text(self, raw: bytes) -> str:
        if len(raw) > self.max_bytes:
            return raw[: self.max_bytes].decode("utf-8", "replace") + CUT_MARK
        return raw.rstrip(b"\r").decode("utf-8", "replace")


class Ring:
    """A pool's recent lines: at most ``max_lines`` and ``max_bytes`` of text; the oldest go."""

    __slots__ = ("_lines", "bytes", "dropped", "max_bytes", "max_lines")

    def __init__(self, max_lines: int = RING_LINES, max_bytes: int = RING_BYTES) -> None:
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._lines: collections.deque[OutputLine] = collections.deque()
        self.bytes = 0
        self.dropped = 0  # lines that left the ring to make room

    def append(self, line: OutputLine) -> None:
        """Keep ``line``, dropping the oldest lines beyond either bound."""
        self._lines.append(line)
        self.bytes += len(line.text)
        while len(self._lines) > self.max_lines or self.bytes > self.max_bytes:
            old = self._lines.popleft()
            self.bytes -= len(old.text)
            self.dropped += 1

    def lines(self) -> list[OutputLine]:
        """Every line held, oldest first."""
        return list(self._lines)

    def __len__(self) -> int:
        return len(self._lines)


@dataclass(slots=True)
class _Pipe:
    pool: str | None
    pid: int
    stream: str
    fd: int
    splitter: LineSplitter


class OutputHub:
    """Reads every captured pipe, keeps each pool's ring, echoes lines to the controller's log.

    Args:
        log_format: ``text`` or ``json`` (``orchestrator run --log-format``).
        write: writes whole lines to the controller's log (``LogWriter.write_raw``).
        journal: the controller's stderr is the journal (``journal_stream``).
        wall: the wall clock lines are stamped with.
    """

    def __init__(
        self,
        log_format: str = "text",
        write: Callable[[str], None] | None = None,
        *,
        journal: bool = False,
        wall: Callable[[], float] = time.time,
        max_lines: int = RING_LINES,
        max_bytes: int = RING_BYTES,
        echo_backlog: int = ECHO_BACKLOG,
    ) -> None:
        self._format = log_format
        self._journal = journal
        self._write = write
        self._wall = wall
        self._max_lines = max_lines
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._rings: dict[str | None, Ring] = {}
        self._subscribers: list[Callable[[OutputLine], None]] = []
        self._seq = 0
        self._pending: list[_Pipe] = []
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop = threading.Event()
        self._echo: collections.deque[str] = collections.deque()
        self._echo_backlog = echo_backlog
        self._echo_dropped = 0
        self._echo_ready = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []

    # -- backends.output.OutputSink ----------------------------------------------------------
    @property
    def log_format(self) -> str:
        return self._format

    @property
    def journal(self) -> bool:
        return self._journal

    def attach(self, pool: str | None, pid: int, stream: str, fd: int) -> None:
        os.set_blocking(fd, False)
        with self._lock:
            self._rings.setdefault(pool, Ring(self._max_lines, self._max_bytes))
            self._pending.append(_Pipe(pool, pid, stream, fd, LineSplitter()))
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"\0")

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the reader and, when there is a log to write, the echo thread."""
        self._threads.append(threading.Thread(target=self._read, name="output", daemon=True))
        if self._write is not None:
            self._threads.append(threading.Thread(target=self._echo_loop, name="echo", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Read what the pipes still hold, stop the threads and close every pipe."""
        self._stop.set()
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"\0")
        with self._lock:
            self._echo_ready.notify_all()
        for thread in self._threads:
            thread.join(timeout_s)
        for key in list(self._selector.get_map().values()):
            with contextlib.suppress(OSError):
                os.close(key.fd)
        self._selector.close()
        with contextlib.suppress(OSError):
            os.close(self._wake_w)

    # -- reading -----------------------------------------------------------------------------
    def _read(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=1.0):
                if key.data is None:
                    self._register()
                else:
                    self._drain(key.data)
        # Stopping: what the processes wrote before they ended still counts (bounded: a
        # process that outlived its pool may still be writing).
        for key in list(self._selector.get_map().values()):
            for _ in range(64):
                if key.data is None or not self._drain(key.data):
                    break

    def _register(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 4096)
        with self._lock:
            pending, self._pending = self._pending, []
        for pipe in pending:
            self._selector.register(pipe.fd, selectors.EVENT_READ, pipe)

    def _drain(self, pipe: _Pipe) -> bool:
        """One read (not until EAGAIN: a flooding pipe gets its turn like the others); whether
        the pipe is still open and had data."""
        try:
            data = os.read(pipe.fd, READ_BYTES)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if data:
            self._publish(pipe, pipe.splitter.feed(data))
            return True
        self._publish(pipe, pipe.splitter.finish())
        self._selector.unregister(pipe.fd)
        os.close(pipe.fd)
        return False

    def _publish(self, pipe: _Pipe, texts: Iterable[str]) -> None:
        ts = self._wall()
        with self._lock:
            ring = self._rings[pipe.pool]
            subscribers = list(self._subscribers)
            lines = []
            for text in texts:
                self._seq += 1
                line = OutputLine(self._seq, ts, pipe.pool, pipe.pid, pipe.stream, text)
                ring.append(line)
                lines.append(line)
                if self._write is not None:
                    self._echo.append(format_line(line, self._format, self._journal))
            if lines and self._write is not None:
                excess = len(self._echo) - self._echo_backlog
                for _ in range(max(0, excess)):
                    self._echo.popleft()
                self._echo_dropped += max(0, excess)
                self._echo_ready.notify()
        for line in lines:
            for callback in subscribers:
                callback(line)

    # -- echoing -----------------------------------------------------------------------------
    def _echo_loop(self) -> None:
        assert self._write is not None
        while True:
            with self._lock:
                while not self._echo and not self._stop.is_set():
                    self._echo_ready.wait(1.0)
                batch, self._echo = list(self._echo), collections.deque()
                dropped, self._echo_dropped = self._echo_dropped, 0
            if dropped:
                batch.insert(0, self._dropped_note(dropped))
            if batch:
                self._write("\n".join(batch) + "\n")
            elif self._stop.is_set():
                return

    def _dropped_note(self, count: int) -> str:
        if self._format == "json":
            note = json.dumps(
                {"ts": round(self._wall(), 3), "event": "output_dropped", "lines": count},
                separators=(",", ":"),
            )
        else:
            note = f"orchestrator: {count} lines of output not logged (the log could not keep up)"
        return ("<4>" if self._journal else "") + note

    # -- reading the rings -------------------------------------------------------------------
    def pools(self) -> list[str | None]:
        """Every source with a ring (pools that have run, ``None`` for the listener)."""
        with self._lock:
            return list(self._rings)

    def lines(
        self, pool: str | None, *, tail: int | None = None, since: float | None = None
    ) -> list[OutputLine]:
        """A source's buffered lines, oldest first: those stamped at or after ``since`` (wall
        time), the last ``tail`` of them."""
        with self._lock:
            ring = self._rings.get(pool)
            found = ring.lines() if ring is not None else []
        if since is not None:
            found = [line for line in found if line.ts >= since]
        if tail is not None:
            found = found[-tail:] if tail > 0 else []
        return found

    def subscribe(self, callback: Callable[[OutputLine], None]) -> Callable[[], None]:
        """Call ``callback`` (on the reader thread: it must not block) for every new line;
        returns the function that unsubscribes."""
        with self._lock:
            self._subscribers.append(callback)

        def cancel() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return cancel
