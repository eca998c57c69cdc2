"""Sans-I/O HTTP/1.1 for the listener: bytes in, events out (h11's model, llhttp's speed, our policy).

Public surface: `RequestParser`, `ResponseParser`, the events (`Request`, `Response`, `Data`,
`EndOfMessage`, `ConnectionClosed`, `NEED_DATA`, `PAUSED`), the errors (`ProtocolError`,
`RemoteProtocolError`, `LocalProtocolError`, `Reason`), `State`, and the writers.

Must not import: anything else from `orchestrator` (this package is extractable, like h11), nor
`asyncio`, `socket`, `time` or any other I/O. Only `_llhttp` touches `httptools`.
"""

from orchestrator.http1.errors import LocalProtocolError, ProtocolError, Reason, RemoteProtocolError
from orchestrator.http1.events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Framing,
    Headers,
    NextEvent,
    Request,
    Response,
    Sentinel,
)
from orchestrator.http1.parsers import RequestParser, ResponseParser
from orchestrator.http1.state import State
from orchestrator.http1.writers import (
    CONTINUE,
    HOP_BY_HOP,
    origin_form,
    write_chunk,
    write_error_response,
    write_last_chunk,
    write_request_head,
    write_response_head,
)

__all__ = [
    "CONTINUE",
    "HOP_BY_HOP",
    "NEED_DATA",
    "PAUSED",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "Framing",
    "Headers",
    "LocalProtocolError",
    "NextEvent",
    "ProtocolError",
    "Reason",
    "RemoteProtocolError",
    "Request",
    "RequestParser",
    "Response",
    "ResponseParser",
    "Sentinel",
    "State",
    "origin_form",
    "write_chunk",
    "write_error_response",
    "write_last_chunk",
    "write_request_head",
    "write_response_head",
]
