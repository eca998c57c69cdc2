"""Opening a request queue the way ASP.NET Core's HttpSys server does: Create, Attach, CreateOrAttach.

Owns: ``QueueMode``, ``open_request_queue`` (NativeInterop/RequestQueue.cs, notes section 2) and the
errors it reports by name (``QueueNotFoundError``, ``QueueNameTakenError``, ``QueueNameInvalidError``,
``QueueAccessDeniedError``). The rule it encodes: the controller creates (and only a creator can set
properties), workers attach with OPEN_EXISTING; in CreateOrAttach a 183 means someone else created the
queue, so it retries once with OPEN_EXISTING and reports ``created=False``, which the reconciler turns
into drift, never into a retry loop.
Imports ``binding``, ``handles`` and ``_ffi`` constants only.
"""

from __future__ import annotations

import enum

from orchestrator.httpapi import _ffi
from orchestrator.httpapi._ffi import ErrorCode, HttpApiError
from orchestrator.httpapi.binding import HttpSysBinding
from orchestrator.httpapi.handles import RequestQueue

__all__ = [
    "QueueAccessDeniedError",
    "QueueMode",
    "QueueNameInvalidError",
    "QueueNameTakenError",
    "QueueNotFoundError",
    "QueueOpenError",
    "open_request_queue",
]


class QueueMode(enum.IntEnum):
    """ASP.NET Core's ``RequestQueueMode`` (the values match)."""

    CREATE = 0  # fail if the name exists
    ATTACH = 1  # fail if it does not
    CREATE_OR_ATTACH = 2


class QueueOpenError(Exception):
    """A queue could not be opened, for a reason the backend reports by name."""

    def __init__(
        self, name: str | None, mode: QueueMode, cause: HttpApiError, message: str
    ) -> None:
        super().__init__(f"request queue {name!r} ({mode.name.lower()}): {message}")
        self.queue_name = name
        self.mode = mode
        self.code = cause.code


class QueueNotFoundError(QueueOpenError):
    """Attach: no queue has this name (2); the controller has not created it (yet)."""


class QueueNameTakenError(QueueOpenError):
    """Create: another process already created a queue with this name (183)."""


class QueueNameInvalidError(QueueOpenError):
    """The name is not acceptable to http.sys (123)."""


class QueueAccessDeniedError(QueueOpenError):
    """The queue's DACL does not let this identity open it (5)."""


def open_request_queue(
    binding: HttpSysBinding,
    name: str | None,
    mode: QueueMode = QueueMode.CREATE,
    *,
    security_descriptor: str | None = None,
    inheritable: bool = False,
    controller: bool = False,
    delegation: bool = False,
) -> RequestQueue:
    """Create or attach to a request queue.

    Args:
        binding: the HTTP Server API of this process (initialised).
        name: the queue name (required to attach; ``None`` makes a private, unnamed queue).
        mode: ``CREATE``, ``ATTACH`` or ``CREATE_OR_ATTACH``.
        security_descriptor: SDDL of the queue DACL; applied only when this call creates the queue
            (OPEN_EXISTING must pass a NULL SECURITY_ATTRIBUTES, so it is dropped for the retry).
        inheritable: make the handle inheritable, so a spawned worker can use it (how workers get
            the queue under Wine, where names are ignored).
        controller: CONTROLLER flag (the handle cannot receive), for a creator that never serves.
        delegation: DELEGATION flag, for a delegation receiver attaching.

    Returns:
        The handle, with ``created`` telling whether this process created the queue.

    Raises:
        QueueNotFoundError, QueueNameTakenError, QueueNameInvalidError, QueueAccessDeniedError: as
            their names say; any other failure propagates as ``HttpApiError``.
        ValueError: attaching without a name.
    """
    if mode is not QueueMode.CREATE and name is None:
        raise ValueError("attaching to a request queue needs its name")
    extra = 0
    if controller:
        extra |= _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_CONTROLLER
    if delegation:
        extra |= _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_DELEGATION
    attach_flags = _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING | extra
    try:
        if mode is QueueMode.ATTACH:
            handle = binding.create_request_queue(name, flags=attach_flags, inheritable=inheritable)
            return RequestQueue(binding, handle, name, created=False)
        try:
            handle = binding.create_request_queue(
                name, security_descriptor=security_descriptor, flags=extra, inheritable=inheritable
            )
            return RequestQueue(binding, handle, name, created=True)
        except HttpApiError as exc:
            if mode is not QueueMode.CREATE_OR_ATTACH or exc.code != ErrorCode.ERROR_ALREADY_EXISTS:
                raise
        # Someone else created it: attach once. A 2 here means it vanished in between; that is
        # reported, not retried, so two controllers cannot ping-pong on one name.
        handle = binding.create_request_queue(name, flags=attach_flags, inheritable=inheritable)
        return RequestQueue(binding, handle, name, created=False)
    except HttpApiError as exc:
        named = _named_error(name, mode, exc)
        if named is None:
            raise
        raise named from exc


def _named_error(name: str | None, mode: QueueMode, exc: HttpApiError) -> QueueOpenError | None:
    if exc.code == ErrorCode.ERROR_FILE_NOT_FOUND:
        return QueueNotFoundError(name, mode, exc, "queue could not be found")
    if exc.code == ErrorCode.ERROR_ALREADY_EXISTS:
        return QueueNameTakenError(name, mode, exc, "a queue with this name already exists")
    if exc.code == ErrorCode.ERROR_INVALID_NAME:
        return QueueNameInvalidError(name, mode, exc, "invalid queue name")
    if exc.code == ErrorCode.ERROR_ACCESS_DENIED:
        return QueueAccessDeniedError(name, mode, exc, "access denied by the queue's DACL")
    return None
