"""Fixtures for the integration tests: names unique to each test (and the listener's throwaway
user)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.controller import Names, unique_names
from tests.support.users import delete_user_named


@pytest.fixture
def names() -> Iterator[Names]:
    """Pool names and a listener user no other test (or concurrent test run) uses."""
    made = unique_names()
    try:
        yield made
    finally:
        if made.listener_user:
            delete_user_named(made.listener_user)
