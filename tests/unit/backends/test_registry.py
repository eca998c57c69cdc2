"""The backend registry: the only module that imports a backend, and what it hands out."""

from __future__ import annotations

import pytest

from orchestrator.backends.base import QueueRefused
from orchestrator.backends.registry import queue_opener
from orchestrator.errors import PermanentBackendError


def test_the_linux_queue_opener_is_the_brokers_client() -> None:
    """``orchestrator open`` on Linux gets the broker's ``open_queue``, whose refusals are the
    backend-neutral ``QueueRefused``."""
    from orchestrator.backends.linux import broker

    assert broker.open_queue is queue_opener("linux")
    assert issubclass(broker.BrokerRefused, QueueRefused)


@pytest.mark.parametrize("name", ["httpsys", "fake"])
def test_a_backend_without_queue_sockets_says_so(name: str) -> None:
    """http.sys workers open their queue by name themselves: there is no socket to pass."""
    with pytest.raises(PermanentBackendError, match=f'backend "{name}" cannot open a queue'):
        queue_opener(name)


def test_an_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(PermanentBackendError, match='unknown backend "nope"') as caught:
        queue_opener("nope")
    assert "linux" in caught.value.detail
