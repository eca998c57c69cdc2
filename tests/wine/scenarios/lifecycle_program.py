"""The lifecycle probe: one fixed sequence of HTTP Server API calls and the result each one gets.

Binding-agnostic, so the same program runs twice: under Wine against the real httpapi.dll
(``lifecycle.py``, Wine tier) and on Linux against ``RecordingBinding`` in its ``wine8`` and
``windows`` flavours (tests/unit/httpsys/test_fake_matches_wine.py). ``WINE8_EXPECTED`` is what the
real Wine 8.0 DLL answered when this was written; both tiers assert it, which is what keeps the
fake's Wine flavour honest. ``WINDOWS_EXPECTED`` is what the fake predicts for Windows from the
notes (section 1.6); only the ``windows`` marker tier could confirm it.
Never calls a function that aborts under Wine, and never passes a stale URL group id (Wine
dereferences it as NULL).
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.backends.httpsys.sddl import build_queue_sddl
from orchestrator.httpapi import _ffi
from orchestrator.httpapi._ffi import HttpApiError, ServerProperty
from orchestrator.httpapi.binding import (
    BandwidthLimit,
    ConnectionLimit,
    HttpSysBinding,
    QueueBinding,
    TimeoutLimits,
)
from orchestrator.httpapi.handles import ApiInit

OPEN_EXISTING = _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING

#: Step name -> Win32 result under Wine 8.0 (observed against the real DLL).
WINE8_EXPECTED: dict[str, int] = {
    "session.qos": 0,
    "session.timeouts": 120,
    "queue.create": 0,
    "queue.duplicate_name": 0,  # Windows: 183 (Wine ignores names)
    "queue.open_existing_missing": 0,  # Windows: 2 (and Wine's queue never receives)
    "queue.length": 120,
    "queue.verbosity": 120,
    "group.timeouts": 120,
    "group.connections": 120,
    "g1.bind": 0,
    "g1.add.no_port": 87,
    "g1.add.upper_scheme": 87,
    "g1.add": 0,
    "g1.add.second": 120,  # one URL per group
    "g1.remove.other": 2,  # forgets g1's URL anyway: it stays registered (orphaned)
    "g1.remove.again": 2,
    "g1.add.again": 183,  # the orphan is still in the driver
    "g2.bind": 0,
    "g2.add.https": 1,  # ERROR_INVALID_FUNCTION
    "g3.bind": 0,
    "g3.add.no_trailing_slash": 0,  # Windows: 87
    "g3.remove": 0,
    "g4.add.unbound_bad": 0,  # not checked until bound
    "g4.bind": 0,  # ...and the driver's 87 is swallowed by the binding
    "g5.bind": 0,
    "g5.add": 0,
    "g5.remove": 0,
    "g5.remove.empty": 2,  # Windows: 1168
    "g1.unbind": 0,
    "close.queue": 0,
    "close.queue.twice": 6,
    "close.groups": 0,
    "close.session": 0,
}

#: What the fake predicts for real Windows (notes section 1.6); not observed here.
WINDOWS_EXPECTED: dict[str, int] = {
    **WINE8_EXPECTED,
    "session.timeouts": 0,
    "queue.duplicate_name": 183,
    "queue.open_existing_missing": 2,
    "queue.length": 0,
    "queue.verbosity": 0,
    "group.timeouts": 0,
    "group.connections": 0,
    "g1.add.second": 0,
    "g1.remove.other": 1168,
    "g1.remove.again": 1168,
    "g1.add.again": 183,
    "g2.add.https": 0,
    "g3.add.no_trailing_slash": 87,
    "g3.remove": 87,  # the URL was refused, and removing bad syntax is 87 as well
    "g4.add.unbound_bad": 87,
    "g5.remove.empty": 1168,
}

Report = Callable[[str, int], None]


def run_program(binding: HttpSysBinding, port: int, report: Report) -> None:
    """Run the probe on ``binding``, reporting ``(step, result)`` for every call."""

    def step(name: str, call: Callable[[], object]) -> None:
        try:
            call()
        except HttpApiError as exc:
            report(name, exc.code)
        else:
            report(name, 0)

    base = f"http://+:{port}"
    with ApiInit(binding, _ffi.HTTP_INITIALIZE_SERVER | _ffi.HTTP_INITIALIZE_CONFIG):
        session = binding.create_server_session()
        step(
            "session.qos",
            lambda: binding.set_server_session_property(session, BandwidthLimit(4096)),
        )
        step(
            "session.timeouts",
            lambda: binding.set_server_session_property(session, TimeoutLimits(entity_body_s=30)),
        )
        sddl = build_queue_sddl([])
        queue = binding.create_request_queue(
            "lifecycle", security_descriptor=sddl, inheritable=True
        )
        report("queue.create", 0)
        extra: list[int] = []
        step(
            "queue.duplicate_name", lambda: extra.append(binding.create_request_queue("lifecycle"))
        )
        step(
            "queue.open_existing_missing",
            lambda: extra.append(binding.create_request_queue("never-made", flags=OPEN_EXISTING)),
        )
        step(
            "queue.length",
            lambda: binding.set_request_queue_property(queue, ServerProperty.QUEUE_LENGTH, 10),
        )
        step(
            "queue.verbosity",
            lambda: binding.set_request_queue_property(queue, ServerProperty.VERBOSITY_503, 1),
        )
        groups = [binding.create_url_group(session) for _ in range(5)]
        g1, g2, g3, g4, g5 = groups
        step("group.timeouts", lambda: binding.set_url_group_property(g1, TimeoutLimits(5)))
        step("group.connections", lambda: binding.set_url_group_property(g1, ConnectionLimit(9)))
        bind = QueueBinding(queue)

        step("g1.bind", lambda: binding.set_url_group_property(g1, bind))
        step("g1.add.no_port", lambda: binding.add_url_to_url_group(g1, "http://localhost/x/", 1))
        step(
            "g1.add.upper_scheme", lambda: binding.add_url_to_url_group(g1, f"HTTP://+:{port}/", 1)
        )
        step("g1.add", lambda: binding.add_url_to_url_group(g1, f"{base}/one/", 1))
        step("g1.add.second", lambda: binding.add_url_to_url_group(g1, f"{base}/two/", 2))
        step("g1.remove.other", lambda: binding.remove_url_from_url_group(g1, f"{base}/zzz/"))
        step("g1.remove.again", lambda: binding.remove_url_from_url_group(g1, f"{base}/zzz/"))
        step("g1.add.again", lambda: binding.add_url_to_url_group(g1, f"{base}/one/", 1))

        step("g2.bind", lambda: binding.set_url_group_property(g2, bind))
        step("g2.add.https", lambda: binding.add_url_to_url_group(g2, f"https://+:{port}/s/", 3))

        step("g3.bind", lambda: binding.set_url_group_property(g3, bind))
        step(
            "g3.add.no_trailing_slash",
            lambda: binding.add_url_to_url_group(g3, f"{base}/noslash", 4),
        )
        step("g3.remove", lambda: binding.remove_url_from_url_group(g3, f"{base}/noslash"))

        step("g4.add.unbound_bad", lambda: binding.add_url_to_url_group(g4, "http://h/x/", 5))
        step("g4.bind", lambda: binding.set_url_group_property(g4, bind))

        step("g5.bind", lambda: binding.set_url_group_property(g5, bind))
        step("g5.add", lambda: binding.add_url_to_url_group(g5, f"{base}/five/", 6))
        step("g5.remove", lambda: binding.remove_url_from_url_group(g5, f"{base}/five/"))
        step("g5.remove.empty", lambda: binding.remove_url_from_url_group(g5, f"{base}/five/"))

        step("g1.unbind", lambda: binding.set_url_group_property(g1, QueueBinding(None)))
        for handle in extra:
            binding.close_request_queue(handle)
        step("close.queue", lambda: binding.close_request_queue(queue))
        step("close.queue.twice", lambda: binding.close_request_queue(queue))

        def close_groups() -> None:
            for group in groups:
                binding.close_url_group(group)

        step("close.groups", close_groups)
        step("close.session", lambda: binding.close_server_session(session))
