"""Fixtures for controller tests: names unique to each test (and the listener's throwaway user)."""

from __future__ import annotations

import pwd
from collections.abc import Iterator

import pytest

from tests.support.controller import Names, unique_names
from tests.support.users import User, delete_user


@pytest.fixture
def names() -> Iterator[Names]:
    """Pool names and a listener user no other test (or concurrent test run) uses."""
    made = unique_names()
    try:
        yield made
    finally:
        if made.listener_user:
            entry = pwd.getpwnam(made.listener_user)
            delete_user(User(made.listener_user, entry.pw_uid, entry.pw_gid))
