"""The listener's descriptor limit: ``session.listener.openFiles`` capped at the controller's."""

from __future__ import annotations

import resource
import types

import pytest

from orchestrator.backends.linux.listener_ctl import ListenerManager


def _nofile(wanted: int | None) -> tuple[tuple[int, int], list[dict[str, object]]]:
    events: list[dict[str, object]] = []
    fake = types.SimpleNamespace(emit=lambda event, **f: events.append({"event": event, **f}))
    return ListenerManager._nofile(fake, wanted), events  # type: ignore[arg-type]


def test_unset_means_the_controllers_hard_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = hard if hard != resource.RLIM_INFINITY else 65536
    assert ((limit, limit), []) == _nofile(None)


def test_a_lower_value_is_both_soft_and_hard() -> None:
    assert ((256, 256), []) == _nofile(256)


def test_a_value_above_the_controllers_hard_limit_is_lowered_and_reported() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("nothing is above an unlimited hard limit")
    limits, events = _nofile(hard + 1)
    assert (hard, hard) == limits
    assert [("listener_open_files_clamped", hard + 1, hard)] == [
        (e["event"], e["wanted"], e["limit"]) for e in events
    ]
