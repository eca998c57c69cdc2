"""The connection state machine of one direction of an HTTP/1.1 connection, as ONE transition table.

Owns: `State`, `Input` and `TRANSITIONS`, and the small `StateMachine` that applies them. Every change of
state in the parsers goes through `StateMachine.process`; no other code assigns a state. An input the
table does not list is a bug in the caller (`LocalProtocolError`); `Input.ERROR` is accepted in every
state and the resulting `ERROR` state is sticky, because after a framing error nothing later on the
connection can be trusted (RFC 9112 §6.3, and what http.sys does after any parse error).

Pausing is not a state: a parser that is asked to pause simply refuses to leave `DONE` (or to start a
head in `IDLE`) until resumed, which keeps this table about the protocol alone.

Must not import: anything from `orchestrator`; from this package only `errors`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from orchestrator.http1.errors import LocalProtocolError


class State(enum.Enum):
    """Where the parser is between and inside messages."""

    IDLE = "IDLE"  # waiting for a message head (possibly part of one is buffered)
    BODY = "BODY"  # head delivered; reading its body
    DONE = "DONE"  # message complete; another may follow on this connection
    MUST_CLOSE = "MUST_CLOSE"  # message complete; nothing more is parsed (Connection: close, 1.0)
    SWITCHED = "SWITCHED"  # message complete; what follows is not HTTP (Upgrade, 101)
    CLOSED = "CLOSED"  # the peer closed at a message boundary
    ERROR = "ERROR"  # a protocol error happened; sticky

    # Members are singletons: identity hashing keeps the transition lookup off Enum's Python __hash__.
    __hash__ = object.__hash__


class Input(enum.Enum):
    """What happened, as far as the state machine cares."""

    HEAD = "head"  # a Request or Response head was delivered
    DATA = "data"  # a piece of body was delivered
    END_KEEP_ALIVE = "end, keep-alive"  # EndOfMessage; the connection stays usable
    END_CLOSE = "end, close"  # EndOfMessage; no further message on this connection
    END_SWITCH = "end, switch"  # EndOfMessage; the protocol changes after it
    END_INTERIM = "end, interim"  # EndOfMessage of a 1xx response; the final response follows
    NEXT = "next"  # start reading the next message (pipelining, or after a resume)
    EOF = "eof"  # the peer closed its sending side at a message boundary
    ERROR = "error"  # a protocol error (local or remote)

    __hash__ = object.__hash__


_S = State
_I = Input
TRANSITIONS: Final[Mapping[tuple[State, Input], State]] = MappingProxyType(
    {
        (_S.IDLE, _I.HEAD): _S.BODY,
        (_S.IDLE, _I.EOF): _S.CLOSED,
        (_S.BODY, _I.DATA): _S.BODY,
        (_S.BODY, _I.END_KEEP_ALIVE): _S.DONE,
        (_S.BODY, _I.END_CLOSE): _S.MUST_CLOSE,
        (_S.BODY, _I.END_SWITCH): _S.SWITCHED,
        (_S.BODY, _I.END_INTERIM): _S.IDLE,
        (_S.DONE, _I.NEXT): _S.IDLE,
        (_S.DONE, _I.EOF): _S.CLOSED,
        (_S.MUST_CLOSE, _I.EOF): _S.CLOSED,
        **{(state, _I.ERROR): _S.ERROR for state in State},
    }
)


class StateMachine:
    """Holds the current `State` and moves it only along `TRANSITIONS`."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = State.IDLE

    def process(self, event: Input) -> State:
        """Apply `event` and return the new state.

        Raises:
            LocalProtocolError: the table has no transition for (state, event); the machine moves to
                ERROR first, so the misuse is sticky too.
        """
        try:
            self.state = TRANSITIONS[self.state, event]
        except KeyError:
            previous, self.state = self.state, State.ERROR
            raise LocalProtocolError(
                f"no transition from {previous.value} on {event.value!r}"
            ) from None
        return self.state
