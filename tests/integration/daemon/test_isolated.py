"""examples/isolated as root: least privilege read back from /proc, and the queue ACLs enforced by
real connection attempts and the open-by-name broker."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time

import pytest

from tests.support.controller import (
    ANY_PORT,
    REPO,
    Names,
    quickstart_manifest,
    running_controller,
    wait_until,
)
from tests.support.users import User, run_as

pytestmark = [pytest.mark.integration, pytest.mark.root]


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        return dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)


def _isolated() -> str:
    """examples/isolated on any free port."""
    with open(os.path.join(REPO, "examples", "isolated", "site.yaml"), encoding="utf-8") as fh:
        return fh.read().replace("127.0.0.1:8080", f"127.0.0.1:{ANY_PORT}")


def _user(name: str) -> User:
    import pwd

    entry = pwd.getpwnam(name)
    return User(name, entry.pw_uid, entry.pw_gid)


def test_isolated_workers_run_with_least_privilege(world_dir: str) -> None:
    """Own uid and gid four times, exactly the configured groups, no capabilities, NoNewPrivs 1,
    and no fd but 0, 1, 2 and the queue."""
    with running_controller(
        world_dir,
        _isolated(),
        apps_from=os.path.join(REPO, "examples", "isolated", "apps"),
    ) as ctl:
        workers = ctl.workers()
        assert {"hello", "notes"} == {w["pool"] for w in workers}
        for w in workers:
            pid, user = int(str(w["pid"])), str(w["user"])
            assert f"orch-{w['pool']}" == user
            st = _status(pid)
            uid, gid = _user(user).uid, _user(user).gid
            assert "\t".join([str(uid)] * 4) == st["Uid"]
            assert "\t".join([str(gid)] * 4) == st["Gid"]
            assert "" == st["Groups"].strip()
            for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
                assert "0000000000000000" == st[cap], (cap, w)
            assert "1" == st["NoNewPrivs"]
            fds = sorted(int(f) for f in os.listdir(f"/proc/{pid}/fd"))
            assert [0, 1, 2, 3] == fds[:4], fds
            targets = {t for fd, t in _fd_targets(pid).items() if fd > 3}
            # Anything above 3 is the worker's own making (its thread pool's pipes, its accepted
            # connections), never something it inherited from the controller.
            assert all(t.startswith(("socket:", "pipe:", "anon_inode:")) for t in targets), targets
        assert 200 == ctl.get("/hello/").status


def test_a_worker_cannot_reach_another_queue_and_the_broker_follows_the_acl(world_dir: str) -> None:
    """A's user: connect to B's socket (EACCES), connect to its own (EACCES: only the listener
    may), open B by name (refused); B's user opens B and can accept() on it."""
    with running_controller(
        world_dir,
        _isolated(),
        apps_from=os.path.join(REPO, "examples", "isolated", "apps"),
    ) as ctl:
        hello, notes = _user("orch-hello"), _user("orch-notes")
        notes_sock = os.path.join(ctl.run_dir, "queues", "notes.sock")
        hello_sock = os.path.join(ctl.run_dir, "queues", "hello.sock")
        connect = (
            "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n"
            "    s.connect(sys.argv[1]); print('OK')\nexcept PermissionError:\n"
            "    print('EACCES')\n"
        )
        assert (
            "EACCES"
            == run_as(hello, ["/usr/bin/python3", "-c", connect, notes_sock]).stdout.strip()
        )
        assert (
            "EACCES"
            == run_as(hello, ["/usr/bin/python3", "-c", connect, hello_sock]).stdout.strip()
        )
        opener = [
            sys.executable,
            "-m",
            "orchestrator",
            "open",
            "notes",
            "--run-dir",
            ctl.run_dir,
            "--",
        ]
        refused = run_as(hello, [*opener, "/usr/bin/true"], cwd=REPO)
        assert 1 == refused.returncode
        assert "cannot open queue notes: denied" in refused.stderr
        accept = (
            # Until our own connection: the listener (a request or a health probe routed to notes)
            # may reach this opener first; those are closed unanswered.
            "import socket\ns=socket.socket(fileno=3)\ns.settimeout(40)\n"
            "while True:\n"
            "    c,_=s.accept()\n"
            "    if c.recv(5)==b'hello':\n"
            "        print('ACCEPTED hello')\n"
            "        break\n"
            "    c.close()\n"
        )
        proc = subprocess.Popen(
            [
                "setpriv",
                f"--reuid={notes.uid}",
                f"--regid={notes.gid}",
                "--clear-groups",
                "--",
                *opener,
                "/usr/bin/python3",
                "-c",
                accept,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        wait_until(
            lambda: any(
                e.get("decision") == "ok" and e.get("queue") == "notes"
                for e in ctl.events("broker_open")
            ),
            15,
            "the broker to grant notes",
        )
        # The worker pool also accepts on this queue: send until our opener is the one that gets it
        # (it still has to exec and start Python after the grant: slow on a busy host).
        out = err = ""
        deadline = time.monotonic() + 30  # within the opener's own 40 s accept timeout
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(notes_sock)
                client.sendall(b"hello")
                try:
                    out, err = proc.communicate(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    continue
        proc.kill()
        assert "ACCEPTED hello" in out, err
        assert any(
            e.get("decision") == "denied" and e.get("uid") == hello.uid
            for e in ctl.events("broker_open")
        )


def _free_privileged_port(exclude: int = 0) -> int:
    """A port below 1024 nothing listens on (root may bind it; the test's users may not). Port 0
    cannot stand in for it: the kernel gives an ephemeral port, above 1024."""
    for port in range(990, 900, -1):
        if port == exclude:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port below 1024")


def _listening_inodes(port: int) -> set[str]:
    """Inodes of sockets in LISTEN state on ``port`` (``/proc/net/tcp``)."""
    inodes = set()
    with open("/proc/net/tcp", encoding="ascii") as fh:
        for line in fh.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
                inodes.add(fields[9])
    return inodes


def test_the_listener_serves_a_privileged_port_without_any_privilege(
    world_dir: str, names: Names
) -> None:
    """Catalogue D33: the listener runs as its own user with no capability and NoNewPrivs, serves a
    port below 1024 from the socket the controller bound and passed, cannot bind such a port itself
    (EACCES) and cannot read a manifest only root may read."""
    port = _free_privileged_port()
    with running_controller(world_dir, quickstart_manifest(port, names)) as ctl:
        assert port == ctl.port
        listener = ctl.state()["listener"]
        assert isinstance(listener, dict)
        (pid,) = listener["pids"]
        user = _user(str(listener["user"]))
        assert names.listener_user == user.name
        st = _status(pid)
        assert "\t".join([str(user.uid)] * 4) == st["Uid"]
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert "0000000000000000" == st[cap], cap
        assert "1" == st["NoNewPrivs"]
        assert 200 == ctl.get("/hello/").status
        # It serves the port from an inherited socket: one of its fds is the LISTEN socket.
        assert _listening_inodes(port) & _socket_inodes({pid})
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start", encoding="ascii") as fh:
            unprivileged_from = int(fh.read())
        other = _free_privileged_port(exclude=port)
        if other < unprivileged_from:
            bind = run_as(
                user,
                [
                    "/usr/bin/python3",
                    "-c",
                    f"import socket; socket.socket().bind(('127.0.0.1', {other}))",
                ],
            )
            assert 0 != bind.returncode
            assert "PermissionError" in bind.stderr, bind.stderr
        manifest = os.path.join(ctl.site, "site.yaml")
        os.chmod(manifest, 0o600)
        read = run_as(user, ["cat", manifest])
        assert 0 != read.returncode
        assert "Permission denied" in read.stderr
        assert 200 == ctl.get("/notes/").status


def _fd_targets(pid: int) -> dict[int, str]:
    """What each open fd of ``pid`` points to. An fd closed between listing and reading (a
    connection the process just finished with) is left out, not an error."""
    targets = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            targets[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
    return targets


def _socket_inodes(pids: set[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        try:
            targets = _fd_targets(pid)
        except OSError:
            continue
        inodes.update(t[len("socket:[") : -1] for t in targets.values() if t.startswith("socket:["))
    return inodes


def test_no_abstract_socket_and_no_moment_of_looser_modes(world_dir: str, names: Names) -> None:
    """Catalogue D36: a watcher polls the run directory from the controller's start: the queue
    directory is never more open than 0750 and no queue socket more than 0660, not even right after
    creation; none of the processes holds an abstract (``@``) Unix socket."""
    import stat
    import threading

    run_dir = os.path.join(world_dir, "run")
    queues = os.path.join(run_dir, "queues")
    seen: dict[str, int] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                paths = [queues] + [os.path.join(queues, n) for n in os.listdir(queues)]
            except OSError:
                continue
            for path in paths:
                try:
                    mode = stat.S_IMODE(os.lstat(path).st_mode)
                except OSError:
                    continue
                seen[path] = seen.get(path, 0) | mode

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
            stop.set()
            watcher.join(5)
            state = ctl.state()
            pids = {ctl.proc.pid, *state["listener"]["pids"]}  # type: ignore[index]
            pids |= {int(str(w["pid"])) for w in state["workers"]}  # type: ignore[union-attr]
            ours = _socket_inodes(pids)
            with open("/proc/net/unix", encoding="ascii") as fh:
                abstract = [
                    line.split()[-1]
                    for line in fh.readlines()[1:]
                    if len(line.split()) >= 8
                    and line.split()[6] in ours
                    and line.split()[-1].startswith("@")
                ]
            assert [] == abstract
    finally:
        stop.set()
    sockets = {p: m for p, m in seen.items() if p.endswith(".sock")}
    assert {f"{names.hello}.sock", f"{names.notes}.sock"} <= {os.path.basename(p) for p in sockets}
    assert 0 == seen[queues] & ~0o750, oct(seen[queues])
    for path, mode in sockets.items():
        assert 0 == mode & ~0o660, (path, oct(mode))
