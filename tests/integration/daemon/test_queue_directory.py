"""The queue directory of a real controller as root: 0750, root and the listener's group. A
worker's user cannot reach a queue's path while the listener delivers requests through it."""

from __future__ import annotations

import os
import pwd
import stat

import pytest

from tests.support.controller import ANY_PORT, Names, quickstart_manifest, running_controller
from tests.support.users import User, run_as

pytestmark = [pytest.mark.integration, pytest.mark.root]

_PROBE = (
    "import os,socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
    "try:\n    s.connect(sys.argv[1]); print('OK')\nexcept PermissionError:\n    print('EACCES')\n"
    "try:\n    os.listdir(os.path.dirname(sys.argv[1])); print('OK')\n"
    "except PermissionError:\n    print('EACCES')\n"
)


def _user(name: str) -> User:
    entry = pwd.getpwnam(name)
    return User(name, entry.pw_uid, entry.pw_gid)


def test_the_queue_directory_is_the_listeners_alone(world_dir: str, names: Names) -> None:
    """stat reads back 0750 root:<listener's group>; a worker's user gets EACCES on connect() to
    its own queue and on listing the directory, the listener's user connects, and requests
    flow through the listener."""
    assert names.listener_user is not None
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        queues = os.path.join(ctl.run_dir, "queues")
        listener = _user(names.listener_user)
        st = os.stat(queues)
        assert (0o750, 0, listener.gid) == (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        path = os.path.join(queues, f"{names.hello}.sock")
        worker = _user(str(ctl.workers(names.hello)[0]["user"]))
        assert worker.gid != listener.gid
        argv = ["/usr/bin/python3", "-c", _PROBE, path]
        assert ["EACCES", "EACCES"] == run_as(worker, argv).stdout.split()
        assert "OK" == run_as(listener, argv).stdout.split()[0]
        for _ in range(5):
            assert 200 == ctl.get("/hello/").status
