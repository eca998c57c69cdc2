"""Where sd_notify datagrams go."""

from __future__ import annotations

import pytest

from orchestrator.runner.notify import notify_address, sd_notify


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("/run/notify.sock", "/run/notify.sock"),
        ("@orch/notify", "\0orch/notify"),
        ("", None),
        ("relative.sock", None),
        ("vsock:2:1234", None),
    ],
)
def test_notify_socket_paths_and_abstract_names(value: str, address: str | None) -> None:
    """A path, or an abstract name for a leading ``@``; anything else is not spoken."""
    assert address == notify_address({"NOTIFY_SOCKET": value})


def test_without_notify_socket_nothing_is_sent() -> None:
    """Running by hand, readiness is simply not reported."""
    assert not sd_notify("READY=1", {})
