"""Least privilege, read back from /proc: the exec shim's identity drop, fds, cgroups, queue socket
modes and the open-by-name broker. Root only (real users, cgroups, sockets owned by others)."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from orchestrator.backends.linux.broker import Broker, BrokerRefused, Grant, open_queue
from orchestrator.backends.linux.cgroups import CgroupManager
from orchestrator.backends.linux.host import read_host_facts
from orchestrator.backends.linux.identity import Identity
from orchestrator.backends.linux.queues import QueueSockets
from orchestrator.backends.linux.spawn import ProcessSpec, spawn, worker_environment
from tests.support.leftovers import register_namespace
from tests.support.users import User, run_as, users

pytestmark = [pytest.mark.root, pytest.mark.integration]

SLEEPER = ["/usr/bin/python3", "-c", "import time; time.sleep(60)"]


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        return dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)


def _wait_exec(pid: int, needle: str = "python3", timeout: float = 5.0) -> None:
    """Wait until the shim has exec'ed into the target (its cmdline changes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().split(b"\0")
        if b"_shim.py" not in b" ".join(cmd) and needle.encode() in cmd[0]:
            return
        time.sleep(0.02)
    raise AssertionError("the shim did not exec in time")


def _fd_target(pid: int, fd: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return "(gone)"


def _settled_fds(pid: int, timeout: float = 5.0) -> list[int]:
    """The target's open fds once its start-up is over.

    Right after exec the new interpreter still has module files open while it imports (CI once
    caught fd 4 that way), so wait for the set to come down to 0-3; an inherited fd never closes
    and the caller's assertion then shows what it points at."""
    deadline = time.monotonic() + timeout
    while True:
        fds = sorted(int(f) for f in os.listdir(f"/proc/{pid}/fd"))
        if fds == [0, 1, 2, 3] or time.monotonic() > deadline:
            return fds
        time.sleep(0.02)


def _live_processes_of(uid: int) -> list[int]:
    """Pids running as ``uid``, zombies excluded (an orphan's zombie waits for PID 1 to reap it)."""
    out = subprocess.run(
        ["ps", "-o", "pid=,stat=", "-u", str(uid)], capture_output=True, text=True, check=False
    ).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "Z" not in line.split()[1]]


@pytest.fixture
def two_users() -> Iterator[list[User]]:
    with users(2) as made:
        yield made


@pytest.fixture
def queue_dir(world_dir: str) -> Iterator[QueueSockets]:
    """Queue sockets in a run directory other users can reach (pytest's tmp_path is 0700)."""
    root = os.path.join(world_dir, "run")
    os.makedirs(root, mode=0o711)
    os.chmod(root, 0o711)
    sockets = QueueSockets(os.path.join(root, "queues"), 4096, 0, 0)
    yield sockets
    sockets.close_all()


def _spawn_as(
    user: User,
    queue_fd: int,
    name: str,
    cgroups: CgroupManager | None = None,
    groups: tuple[int, ...] = (),
    argv: list[str] | None = None,
) -> subprocess.Popen[bytes]:
    identity = Identity(user.name, user.uid, user.gid, groups)
    group = cgroups.create(f"{name}/g1") if cgroups else None
    return spawn(
        ProcessSpec(
            argv=tuple(argv or SLEEPER),
            env=worker_environment(identity, {}),
            cwd="/",
            identity=identity,
            drop=True,
            fds=(queue_fd,),
            listen_names=(name,),
            cgroup=group,
            rlimits={"CORE": (0, 0)},
        )
    )


def test_a_worker_runs_with_its_own_identity_and_nothing_else(
    two_users: list[User], queue_dir: QueueSockets
) -> None:
    """uid/gid four times, exactly the configured groups, no capabilities, NoNewPrivs, fds 0-3."""
    user, other = two_users
    queue = queue_dir.create("api", 100)
    proc = _spawn_as(user, queue.fileno(), "api", groups=(other.gid,))
    try:
        _wait_exec(proc.pid)
        st = _status(proc.pid)
        assert f"{user.uid}\t{user.uid}\t{user.uid}\t{user.uid}" == st["Uid"]
        assert f"{user.gid}\t{user.gid}\t{user.gid}\t{user.gid}" == st["Gid"]
        assert str(other.gid) == st["Groups"].strip()
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert "0000000000000000" == st[cap], cap
        assert "1" == st["NoNewPrivs"]
        fds = _settled_fds(proc.pid)
        assert [0, 1, 2, 3] == fds, {fd: _fd_target(proc.pid, fd) for fd in fds}
        inode = os.fstat(queue.fileno()).st_ino
        assert f"socket:[{inode}]" == os.readlink(f"/proc/{proc.pid}/fd/3")
        with open(f"/proc/{proc.pid}/environ", "rb") as fh:
            env = dict(e.split(b"=", 1) for e in fh.read().split(b"\0") if b"=" in e)
        assert (b"1", b"api", str(proc.pid).encode()) == (
            env[b"LISTEN_FDS"],
            env[b"LISTEN_FDNAMES"],
            env[b"LISTEN_PID"],
        )
        with open(f"/proc/{proc.pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        assert str(proc.pid) == fields[3]  # its own session: sid == pid
    finally:
        proc.kill()
        proc.wait()


def test_a_worker_cannot_regain_root(two_users: list[User], queue_dir: QueueSockets) -> None:
    """setuid(0) inside a worker fails with EPERM."""
    user = two_users[0]
    queue = queue_dir.create("q", 10)
    probe = (
        "import os\ntry:\n    os.setuid(0)\n    print('ROOT')\nexcept PermissionError:\n"
        "    print('EPERM')\n"
    )
    out = os.path.join("/tmp", f"orch-setuid-{os.getpid()}.txt")
    proc = _spawn_as(
        user,
        queue.fileno(),
        "q",
        argv=["/bin/sh", "-c", f'/usr/bin/python3 -c "$0" > {out}', probe],
    )
    proc.wait(timeout=10)
    with open(out, encoding="ascii") as fh:
        assert "EPERM" == fh.read().strip()
    os.unlink(out)


@pytest.mark.skipif(
    not read_host_facts().cgroup_v2 and not read_host_facts().v1,
    reason="no cgroup hierarchy on this host",
)
def test_a_worker_joins_its_cgroup_before_exec_and_kill_takes_its_daemons(
    two_users: list[User], queue_dir: QueueSockets
) -> None:
    """/proc/PID/cgroup shows the pool's group; killing the group also ends a double-forked child."""
    user = two_users[0]
    namespace = "orch-test-" + hashlib.sha256(str(os.getpid()).encode()).hexdigest()[:6]
    register_namespace(namespace)
    cgroups = CgroupManager(read_host_facts(), namespace)
    queue = queue_dir.create("cg", 10)
    daemonize = (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(60)\n    os._exit(0)\ntime.sleep(60)\n"
    )
    proc = _spawn_as(
        user, queue.fileno(), "cg", cgroups, argv=["/usr/bin/python3", "-c", daemonize]
    )
    group = None
    try:
        _wait_exec(proc.pid)
        with open(f"/proc/{proc.pid}/cgroup", encoding="ascii") as fh:
            lines = fh.read()
        assert f"/{namespace}/cg/g1" in lines
        v2, v1 = cgroups._dirs("cg/g1")
        from orchestrator.backends.linux.cgroups import Cgroup

        group = Cgroup("cg/g1", v2, v1)
        deadline = time.monotonic() + 5
        while len(group.pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(group.pids()) >= 2  # the worker and its daemon
        cgroups.kill(group)
        proc.wait(timeout=5)
        deadline = time.monotonic() + 5
        while group.populated() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not group.populated()
        assert [] == _live_processes_of(user.uid)
    finally:
        proc.kill()
        proc.wait()
        if group is not None:
            cgroups.remove(group)
        cgroups.remove_namespace()


def test_queue_sockets_are_0660_for_the_listener_group_only(
    two_users: list[User], queue_dir: QueueSockets
) -> None:
    """Mode and owner right after creation; the listener's user may connect, a worker's may not."""
    listener, worker = two_users
    queue_dir.listener_gid = listener.gid
    queue = queue_dir.create("acl", 10)
    st = os.stat(queue.path)
    assert (0o660, 0, listener.gid) == (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    st = os.stat(queue_dir.directory)
    assert (0o750, 0, listener.gid) == (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    connect = (
        "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n    s.connect(sys.argv[1])\n"
        "    print('OK')\nexcept PermissionError:\n    print('EACCES')\n"
    )
    assert (
        "EACCES" == run_as(worker, ["/usr/bin/python3", "-c", connect, queue.path]).stdout.strip()
    )
    assert "OK" == run_as(listener, ["/usr/bin/python3", "-c", connect, queue.path]).stdout.strip()


def test_the_queue_directory_keeps_others_out_and_follows_the_listeners_group(
    two_users: list[User], queue_dir: QueueSockets
) -> None:
    """0750 root and the listener's group: a worker's user cannot even reach a socket's path (a
    socket left 0666 still answers EACCES; stat fails), the listener's user connects; a new
    listener group (a reload) moves the directory's group at once."""
    listener, worker = two_users
    queue_dir.listener_gid = listener.gid
    queue = queue_dir.create("dir", 10)
    os.chmod(queue.path, 0o666)  # only the directory stands in the way now
    probe = (
        "import os,socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
        "try:\n    s.connect(sys.argv[1]); print('OK')\nexcept PermissionError:\n    print('EACCES')\n"
        "try:\n    os.stat(sys.argv[1]); print('OK')\nexcept PermissionError:\n    print('EACCES')\n"
    )
    worker_sees = run_as(worker, ["/usr/bin/python3", "-c", probe, queue.path]).stdout.split()
    assert ["EACCES", "EACCES"] == worker_sees
    listener_sees = run_as(listener, ["/usr/bin/python3", "-c", probe, queue.path]).stdout.split()
    assert ["OK", "OK"] == listener_sees
    queue_dir.listener_gid = worker.gid
    st = os.stat(queue_dir.directory)
    assert (0o750, 0, worker.gid) == (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    assert (
        "EACCES"
        == run_as(listener, ["/usr/bin/python3", "-c", probe, queue.path]).stdout.split()[0]
    )


@dataclass
class BrokerForB:
    """A broker whose only queue, ``bq``, the second user may open; its decisions in ``events``."""

    path: str
    queue: socket.socket
    events: list[dict[str, object]]


@pytest.fixture
def broker_for_b(two_users: list[User], queue_dir: QueueSockets) -> Iterator[BrokerForB]:
    queue_b = queue_dir.create("bq", 10)
    events: list[dict[str, object]] = []
    path = os.path.join(os.path.dirname(queue_dir.directory), "broker.sock")
    broker = Broker(path, lambda event, **f: events.append({"event": event, **f}))
    broker.set_grants({"bq": Grant(queue_b.fileno(), frozenset({two_users[1].uid}), frozenset())})
    broker.start()
    try:
        yield BrokerForB(path, queue_b, events)
    finally:
        broker.stop()


def test_the_broker_hands_a_queue_only_to_its_acl(
    two_users: list[User], broker_for_b: BrokerForB
) -> None:
    """open B as A's uid: denied (logged with uid); as B's uid: the fd, and accept() works on it."""
    user_a, user_b = two_users
    queue_b, events, path = broker_for_b.queue, broker_for_b.events, broker_for_b.path
    script = (
        "import socket,sys\n"
        f"sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.dirname(__file__)))!r})\n"
        "from orchestrator.backends.linux.broker import open_queue, BrokerRefused\n"
        "try:\n    fd = open_queue(sys.argv[1], sys.argv[2])\n"
        "    s = socket.socket(fileno=fd)\n    s.settimeout(5)\n"
        "    c, _ = s.accept()\n    print('ACCEPTED', c.recv(10).decode())\n"
        "except BrokerRefused as e:\n    print('REFUSED', e.kind)\n"
    )
    refused = run_as(user_a, [sys.executable, "-c", script, path, "bq"], timeout=20)
    assert "REFUSED denied" == refused.stdout.strip(), refused.stderr
    assert any(e["decision"] == "denied" and e["uid"] == user_a.uid for e in events)
    proc = subprocess.Popen(
        [
            "setpriv",
            f"--reuid={user_b.uid}",
            f"--regid={user_b.gid}",
            "--clear-groups",
            "--",
            sys.executable,
            "-c",
            script,
            path,
            "bq",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 10
    while not any(e.get("decision") == "ok" for e in events) and time.monotonic() < deadline:
        time.sleep(0.02)
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(queue_b.path)
        client.sendall(b"hello")
        out, _ = proc.communicate(timeout=10)
    assert "ACCEPTED hello" == out.strip()
    with pytest.raises(BrokerRefused) as unknown:
        open_queue(path, "nope")
    assert "unknown" == unknown.value.kind


def _connected_as(user: User, path: str) -> tuple[socket.socket, int]:
    """A connection to ``path`` made by a process running as ``user``, which hands the connected
    socket to us and exits (its pid is free for reuse). Returns the socket and that pid."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # the child: become the user, connect, hand the socket over, leave
        code = 1
        try:
            os.setgroups([])
            os.setresgid(user.gid, user.gid, user.gid)
            os.setresuid(user.uid, user.uid, user.uid)
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(path)
            socket.send_fds(theirs, [b"x"], [conn.fileno()])
            code = 0
        finally:
            os._exit(code)
    theirs.close()
    _, status = os.waitpid(pid, 0)
    assert 0 == os.waitstatus_to_exitcode(status)
    _, fds, _, _ = socket.recv_fds(ours, 16, 1)
    ours.close()
    return socket.socket(fileno=fds[0]), pid


def _ask(conn: socket.socket, name: str) -> tuple[str, list[int]]:
    with conn:
        conn.settimeout(10)
        conn.sendall(f"OPEN {name}\n".encode())
        msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
    return msg.decode().strip(), fds


def test_the_broker_judges_who_connected_not_who_asks_later(
    two_users: list[User], broker_for_b: BrokerForB
) -> None:
    """Catalogue D35: the decision uses the credentials of connect() (SO_PEERCRED). A connection
    made by A (not in the ACL), handed to root and asked on after A exited, is denied and logged
    with A's uid and pid; one made by B (in the ACL) is granted although B is gone by then."""
    user_a, user_b = two_users
    queue_b, events, path = broker_for_b.queue, broker_for_b.events, broker_for_b.path
    conn, pid_a = _connected_as(user_a, path)
    with pytest.raises(ProcessLookupError):
        os.kill(pid_a, 0)  # gone: only connect-time credentials can name it
    answer, fds = _ask(conn, "bq")  # root writes the request
    assert answer.startswith("ERR denied"), answer
    assert [] == fds
    denied = [e for e in events if e.get("decision") == "denied"]
    assert [(user_a.uid, pid_a)] == [(e["uid"], e["pid"]) for e in denied]

    conn, _ = _connected_as(user_b, path)
    answer, fds = _ask(conn, "bq")
    assert "OK bq" == answer
    assert 1 == len(fds)
    try:
        assert os.fstat(fds[0]).st_ino == os.fstat(queue_b.fileno()).st_ino
    finally:
        os.close(fds[0])
