"""What the Linux side can see of Wine's http.sys when a request gets no answer.

Wine 8's http.sys accepts connections in one "request thread" that sleeps until a socket event
(``WSAEventSelect``) wakes it. Now and then, on a loaded host, that wakeup is lost: its listening
socket (held by the wineserver) fills with connections nobody accepts, every thread of the driver's
host process sleeps, and no request on that port is answered again, whatever the workers do
(seen in loaded runs: ``LISTEN`` with a Recv-Q of 12, every winedevice thread idle, the workers
alive and ready). ``accept_stalled`` tells that state apart from a fault of ours: while the driver
accepts, its listening socket's backlog drains whatever the workers do, since it accepts a
connection before it routes its request.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

#: How long a backlog must stay undrained to count as stalled: the driver accepts one connection
#: per listening socket per wakeup, and on a loaded host a wakeup can take a second or two.
STALL_S = 5.0


def _ss(*args: str) -> subprocess.CompletedProcess[str] | str:
    """``ss ARGS`` run to the end, or why it could not run."""
    try:
        return subprocess.run(
            ["ss", *args], capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)


def sockets(port: int) -> str:
    """``ss``'s view of the port: Recv-Q on a listening socket counts connections waiting to be
    accepted; on an established one, bytes not read yet."""
    result = _ss("-tanpH", f"( sport = :{port} or dport = :{port} )")
    if isinstance(result, str):
        return result
    return result.stdout or result.stderr


def listen_backlog(port: int) -> int | None:
    """Connections waiting in the accept queue of the listening socket(s) on ``port`` (``None``
    when ``ss`` cannot say)."""
    result = _ss("-ltnH", f"( sport = :{port} )")
    if isinstance(result, str) or result.returncode != 0:
        return None
    return sum(int(line.split()[1]) for line in result.stdout.splitlines() if line.strip())


def driver_threads() -> str:
    """The threads of Wine's driver host processes (winedevice.exe, where http.sys runs): state,
    kernel wait channel and CPU ticks spent in one second. One at ~100 ticks is a loop holding the
    driver's lock; all asleep with the driver silent is a lost wakeup."""

    def sample() -> dict[str, tuple[str, str, int]]:
        threads = {}
        for proc_dir in Path("/proc").iterdir():
            if not proc_dir.name.isdigit():
                continue
            try:
                if b"winedevice" not in (proc_dir / "cmdline").read_bytes():
                    continue
                for task in (proc_dir / "task").iterdir():
                    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                    threads[f"{proc_dir.name}/{task.name}"] = (
                        fields[0],
                        (task / "wchan").read_text(),
                        int(fields[11]) + int(fields[12]),
                    )
            except OSError:
                continue
        return threads

    before = sample()
    time.sleep(1)
    after = sample()
    return json.dumps(
        {
            key: f"{state} {wchan} +{ticks - before[key][2]}"
            for key, (state, wchan, ticks) in after.items()
            if key in before
        }
    )


def accept_stalled(port: int) -> str:
    """Evidence that Wine's http.sys stopped accepting on ``port`` ("" when it did not): its
    listening socket holds connections, and STALL_S later it holds as many or more."""
    first = listen_backlog(port)
    if not first:
        return ""
    time.sleep(STALL_S)
    second = listen_backlog(port)
    if second is None or second < first:
        return ""
    return (
        f"connections waiting to be accepted on port {port}: {first}, then {second} after "
        f"{STALL_S:.0f} s\nhttp.sys host threads: {driver_threads()}\nsockets:\n{sockets(port)}"
    )
