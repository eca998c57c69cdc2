"""Small owning wrappers around HTTP Server API objects: close once, usable as context managers.

Owns: ``ApiInit`` (``HttpInitialize`` ... ``HttpTerminate``), ``ServerSession``, ``UrlGroup`` and
``RequestQueue``. Each holds a binding and an id or handle, forwards the object's calls, and makes
``close()`` idempotent so that teardown paths (including failed starts) can close everything they
hold without tracking what already went. A ``UrlGroup`` remembers the URLs it added and the queue it
is bound to, because ``stop`` must undo exactly those.
Imports ``binding`` (the protocol and payloads) and ``_ffi`` constants only; never ctypes functions.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from orchestrator.httpapi import _ffi
from orchestrator.httpapi.binding import (
    HttpSysBinding,
    QueueBinding,
    ServerProperty,
    SessionProperty,
    UrlGroupProperty,
)

__all__ = ["ApiInit", "RequestQueue", "ServerSession", "UrlGroup"]


class _Owned:
    """Something that must be closed exactly once."""

    def __init__(self, binding: HttpSysBinding) -> None:
        self.binding = binding
        self.closed = False

    def _close(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the object; later calls do nothing."""
        if self.closed:
            return
        # Marked first: a failing close must not be retried by an outer teardown.
        self.closed = True
        self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ApiInit(_Owned):
    """This process's use of the HTTP Server API: ``HttpInitialize`` now, ``HttpTerminate`` on close.

    SERVER and CONFIG are initialised by separate calls (Windows counts them separately): Wine 8's
    ``HttpInitialize`` returns 0 *without starting its http.sys driver* when any flag besides SERVER
    is given, after which every ``HttpCreateRequestQueue`` fails with 3 (ERROR_PATH_NOT_FOUND).
    """

    def __init__(self, binding: HttpSysBinding, flags: int = _ffi.HTTP_INITIALIZE_SERVER) -> None:
        """Call ``HttpInitialize(2.0, ...)`` for the SERVER part of ``flags``, then for CONFIG.

        Raises:
            HttpApiError: the API refused (1306 for a version mismatch).
        """
        super().__init__(binding)
        self.flags = flags
        parts = [flags & ~_ffi.HTTP_INITIALIZE_CONFIG, flags & _ffi.HTTP_INITIALIZE_CONFIG]
        self._initialized: list[int] = []
        try:
            for part in parts:
                if part:
                    binding.initialize(part)
                    self._initialized.append(part)
        except BaseException:
            self.close()
            raise

    def _close(self) -> None:
        while self._initialized:
            self.binding.terminate(self._initialized.pop())


class RequestQueue(_Owned):
    """A handle on a request queue, and whether this process created the queue."""

    def __init__(
        self, binding: HttpSysBinding, handle: int, name: str | None, *, created: bool
    ) -> None:
        """Wrap an open handle (see ``queue_open.open_request_queue``)."""
        super().__init__(binding)
        self.handle = handle
        self.name = name
        self.created = created

    def set_property(self, prop: ServerProperty, value: int) -> None:
        """Set QueueLength, State or 503Verbosity (creator only: 87 otherwise)."""
        self.binding.set_request_queue_property(self.handle, prop, value)

    def query_property(self, prop: ServerProperty) -> int:
        """Read QueueLength, State or 503Verbosity (never under Wine: the stub aborts)."""
        return self.binding.query_request_queue_property(self.handle, prop)

    def shutdown(self) -> None:
        """Stop receiving in this process; unreceived requests go to another attached process."""
        self.binding.shutdown_request_queue(self.handle)

    def _close(self) -> None:
        self.binding.close_request_queue(self.handle)

    def __repr__(self) -> str:
        return f"RequestQueue(name={self.name!r}, handle={self.handle:#x}, created={self.created})"


class ServerSession(_Owned):
    """A server session (``HttpCreateServerSession`` ... ``HttpCloseServerSession``)."""

    def __init__(self, binding: HttpSysBinding) -> None:
        """Create the session.

        Raises:
            HttpApiError: 1114 when the API is not initialised.
        """
        super().__init__(binding)
        self.id = binding.create_server_session()

    def set_property(self, value: SessionProperty) -> None:
        """Set Timeouts, Qos (bandwidth) or State on the session."""
        self.binding.set_server_session_property(self.id, value)

    def create_url_group(self) -> UrlGroup:
        """A new URL group in this session."""
        return UrlGroup(self.binding, self)

    def _close(self) -> None:
        self.binding.close_server_session(self.id)

    def __repr__(self) -> str:
        return f"ServerSession(id={self.id:#x})"


class UrlGroup(_Owned):
    """A URL group: the URLs it registered (with their contexts) and the queue it delivers to."""

    def __init__(self, binding: HttpSysBinding, session: ServerSession) -> None:
        """Create the group in ``session``."""
        super().__init__(binding)
        self.session_id = session.id
        self.id = binding.create_url_group(session.id)
        self.urls: dict[str, int] = {}
        self.bound_to: RequestQueue | None = None

    def set_property(self, value: UrlGroupProperty) -> None:
        """Set Timeouts, Qos (connections, bandwidth), State or Binding on the group."""
        self.binding.set_url_group_property(self.id, value)

    def bind(self, queue: RequestQueue) -> None:
        """Deliver this group's requests to ``queue`` (do it before adding URLs)."""
        self.binding.set_url_group_property(self.id, QueueBinding(queue.handle))
        self.bound_to = queue

    def unbind(self) -> None:
        """Detach the queue: http.sys then answers 503 for the group's URLs (none left after stop)."""
        self.binding.set_url_group_property(self.id, QueueBinding(None))
        self.bound_to = None

    def add_url(self, url: str, context: int) -> None:
        """Register ``url`` with the 64-bit ``context`` every matching request will carry."""
        self.binding.add_url_to_url_group(self.id, url, context)
        self.urls[url] = context

    def remove_url(self, url: str) -> None:
        """Unregister one URL this group added."""
        self.binding.remove_url_from_url_group(self.id, url)
        self.urls.pop(url, None)

    def remove_all_urls(self) -> None:
        """Unregister every URL, one call each: Wine ignores ``HTTP_URL_FLAG_REMOVE_ALL``."""
        for url in list(self.urls):
            self.remove_url(url)

    def _close(self) -> None:
        self.binding.close_url_group(self.id)

    def __repr__(self) -> str:
        return f"UrlGroup(id={self.id:#x}, urls={sorted(self.urls)})"
