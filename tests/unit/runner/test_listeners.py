"""Socket activation variables (sd_listen_fds semantics) and ``--bind`` parsing."""

from __future__ import annotations

import pytest

from orchestrator.runner.errors import BootError
from orchestrator.runner.listeners import (
    LISTEN_VARIABLES,
    BindAddress,
    InheritedFd,
    inherit_listeners,
    parse_bind,
    parse_listen_env,
)

PID = 4242


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"LISTEN_FDS": "1", "LISTEN_FDNAMES": "api"},
        {"LISTEN_PID": str(PID)},
        {"LISTEN_PID": "4243", "LISTEN_FDS": "1"},
        {"LISTEN_PID": "1", "LISTEN_FDS": "1"},
        {"LISTEN_PID": "", "LISTEN_FDS": "1"},
        {"LISTEN_PID": "not-a-pid", "LISTEN_FDS": "1"},
        {"LISTEN_PID": f" {PID}", "LISTEN_FDS": "1"},
        {"LISTEN_PID": str(PID), "LISTEN_FDS": "0"},
        {"LISTEN_PID": str(PID), "LISTEN_FDS": "1", "LISTEN_PIDFDID": "77"},
    ],
)
def test_variables_that_are_missing_or_for_another_process_are_ignored(
    env: dict[str, str],
) -> None:
    """Only ``LISTEN_PID == getpid()`` (and a matching pidfd id, if given) hands us fds."""
    assert () == parse_listen_env(env, PID, pidfd_id=76)


def test_matching_pid_yields_fds_from_3_with_their_names() -> None:
    """fds are 3, 4, … in order, named by ``LISTEN_FDNAMES``."""
    env = {"LISTEN_PID": str(PID), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "api:admin"}
    assert (InheritedFd(3, "api"), InheritedFd(4, "admin")) == parse_listen_env(env, PID)


def test_missing_names_default_to_unknown() -> None:
    """Without ``LISTEN_FDNAMES`` every fd is called ``unknown``, as in systemd."""
    env = {"LISTEN_PID": str(PID), "LISTEN_FDS": "1"}
    assert (InheritedFd(3, "unknown"),) == parse_listen_env(env, PID)


def test_a_matching_pidfd_id_is_accepted() -> None:
    """``LISTEN_PIDFDID`` equal to our pidfd inode is the newer, reuse-proof form of the check."""
    env = {"LISTEN_PID": str(PID), "LISTEN_FDS": "1", "LISTEN_PIDFDID": "77"}
    assert (InheritedFd(3, "unknown"),) == parse_listen_env(env, PID, pidfd_id=77)


@pytest.mark.parametrize(
    "env",
    [
        {"LISTEN_PID": str(PID), "LISTEN_FDS": "x"},
        {"LISTEN_PID": str(PID), "LISTEN_FDS": "-1"},
        {"LISTEN_PID": str(PID), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "only-one"},
        {"LISTEN_PID": str(PID), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "a:b"},
    ],
)
def test_malformed_variables_meant_for_us_cannot_boot(env: dict[str, str]) -> None:
    """A count that is not a number, or names that do not match it, is a boot error."""
    with pytest.raises(BootError):
        parse_listen_env(env, PID)


def test_inherit_listeners_unsets_the_variables_even_when_they_are_not_ours() -> None:
    """Children must never see LISTEN_* (sd_listen_fds(1) unsets them whatever the outcome)."""
    env = {
        "LISTEN_PID": "1",
        "LISTEN_FDS": "1",
        "LISTEN_FDNAMES": "api",
        "LISTEN_PIDFDID": "5",
        "KEEP": "me",
    }
    assert [] == inherit_listeners(env)
    assert {"KEEP": "me"} == env
    assert set(LISTEN_VARIABLES) == {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PIDFDID"}


def test_inherit_listeners_unsets_the_variables_when_they_are_malformed() -> None:
    """The variables are gone even when reading them failed."""
    import os

    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "nope"}
    with pytest.raises(BootError):
        inherit_listeners(env)
    assert {} == env


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unix:/run/q.sock", BindAddress(path="/run/q.sock")),
        ("unix:relative.sock", BindAddress(path="relative.sock")),
        ("127.0.0.1:8000", BindAddress(host="127.0.0.1", port=8000)),
        ("localhost:0", BindAddress(host="localhost", port=0)),
        ("[::1]:8080", BindAddress(host="::1", port=8080)),
    ],
)
def test_bind_addresses_parse(text: str, expected: BindAddress) -> None:
    """``unix:PATH`` and ``HOST:PORT`` (bracketed IPv6) are the two forms."""
    assert expected == parse_bind(text)
    assert text == str(expected)


@pytest.mark.parametrize(
    "text", ["unix:", "8000", ":8000", "host:", "host:http", "::1:80", "host:70000", "host:+1"]
)
def test_bad_bind_addresses_are_refused(text: str) -> None:
    """Anything else is a usage error."""
    with pytest.raises(ValueError):
        parse_bind(text)
