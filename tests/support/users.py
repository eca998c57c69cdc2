"""Throwaway users for root tests: created with useradd, removed (with their group) afterwards."""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tests.support.leftovers import register_user

_seq = itertools.count(1)


@dataclass(frozen=True)
class User:
    """A created user."""

    name: str
    uid: int
    gid: int


def create_user(prefix: str = "ot") -> User:
    """Create a system user with its own group; the name is unique for this test run."""
    name = f"{prefix}{os.getpid() % 100000}x{next(_seq)}"
    subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        check=True,
        capture_output=True,
    )
    register_user(name)
    entry = pwd.getpwnam(name)
    return User(name, entry.pw_uid, entry.pw_gid)


def delete_user(user: User, timeout_s: float = 10.0) -> None:
    """Kill anything still running as the user, then delete it and its group.

    ``userdel`` refuses a user with a live process (exit 8), and SIGKILL takes effect only when the
    process next runs: on a busy host a userdel right after pkill can still find it. So kill and
    retry until the user is gone (or the deadline passes; the session check then reports it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        subprocess.run(["pkill", "-KILL", "-u", str(user.uid)], check=False, capture_output=True)
        done = subprocess.run(["userdel", user.name], check=False, capture_output=True)
        if done.returncode in (0, 6) or time.monotonic() > deadline:  # 6: no such user
            break
        time.sleep(0.05)
    with contextlib.suppress(Exception):
        subprocess.run(["groupdel", user.name], check=False, capture_output=True)


def delete_user_named(name: str) -> None:
    """``delete_user`` by name; nothing when no such user exists."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return
    delete_user(User(name, entry.pw_uid, entry.pw_gid))


@contextlib.contextmanager
def users(count: int, prefix: str = "ot") -> Iterator[list[User]]:
    """``count`` throwaway users for the duration of a ``with`` block."""
    made: list[User] = []
    try:
        for _ in range(count):
            made.append(create_user(prefix))
        yield made
    finally:
        for user in made:
            delete_user(user)


def run_as(user: User, argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a command as ``user`` (setpriv, no new privileges)."""
    return subprocess.run(
        ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups", "--", *argv],
        capture_output=True,
        text=True,
        check=False,
        **kw,  # type: ignore[call-overload]
    )
