#!/usr/bin/env python3
"""The listener against nginx, in front of the same worker, in the same run.

For three workers (a minimal uvloop+httptools responder, uvicorn, gunicorn sync) and two
concurrencies it runs wrk against:

  listener   orchestrator's controller: listener -> queue socket -> the worker (fd 3)
  nginx      nginx (keepalive upstream) -> the same worker on a Unix socket
  alone      the worker alone on TCP

and prints req/s, p50 and p99 latency, the front end's CPU time per request (utime+stime deltas from
/proc/PID/stat of the listener's or nginx's processes) and the ratios listener/nginx. gunicorn's sync
worker closes every connection, so its rows measure the expensive path (a new upstream connection per
request). With --idle it also measures the listener's memory with 10,000 idle keep-alive connections
(each made one request: answered one at a time, then all sent at once) and the p99 of fresh requests
meanwhile.

Loopback only; each run is bounded (--duration seconds). Needs wrk and nginx (apt-get install wrk
nginx-light). Usage: python bench/listener_vs_nginx.py [--duration 8] [--workers fast,uvicorn,gunicorn]
[--connections 64,256] [--idle]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BIN = os.path.dirname(sys.executable)
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str = "/app/", timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
                )
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered 200 on port {port}{path}")


def wait_path(path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} never appeared")
        time.sleep(0.1)


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_us_per_req: float | None = None
    error_detail: str = ""


def _ms(text: str) -> float:
    if not re.match(r"[\d.]+", text):
        raise RuntimeError(f"not a wrk latency: {text!r}")
    value = float(re.match(r"[\d.]+", text).group())  # type: ignore[union-attr]
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[re.sub(r"[\d.]", "", text)]


def wrk(port: int, connections: int, duration: int, front_pids: list[int] | None = None) -> Result:
    before = cpu_seconds(front_pids) if front_pids else 0.0
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            f"http://127.0.0.1:{port}/app/x",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    used = cpu_seconds(front_pids) - before if front_pids else None
    if "Latency Distribution" not in out:
        raise RuntimeError(f"wrk gave no latency distribution:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    reqs = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    dist = out.split("Latency Distribution", 1)[1]
    p50 = _ms(re.search(r"50%\s+(\S+)", dist).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", dist).group(1))  # type: ignore[union-attr]
    errors = 0
    detail = []
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
        detail.append(m.group(0))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
        detail.append(m.group(0))
    cpu = used / reqs * 1e6 if used is not None and reqs else None
    return Result(rps, p50, p99, reqs, errors, cpu, "; ".join(detail))


WORKERS = {
    "fast": {
        "inherit": [PY, "fast_responder.py"],
        "uds": [PY, "fast_responder.py", "--uds", "{uds}"],
        "tcp": [PY, "fast_responder.py", "--port", "{port}"],
    },
    "uvicorn": {
        "inherit": [
            f"{BIN}/uvicorn",
            "--fd",
            "3",
            "--no-access-log",
            "--log-level",
            "warning",
            "asgi_app:app",
        ],
        "uds": [
            f"{BIN}/uvicorn",
            "--uds",
            "{uds}",
            "--no-access-log",
            "--log-level",
            "warning",
            "asgi_app:app",
        ],
        "tcp": [
            f"{BIN}/uvicorn",
            "--port",
            "{port}",
            "--no-access-log",
            "--log-level",
            "warning",
            "asgi_app:app",
        ],
    },
    "gunicorn": {
        "inherit": [f"{BIN}/gunicorn", "-w", "1", "wsgi_app:app"],
        "uds": [f"{BIN}/gunicorn", "-w", "1", "--bind", "unix:{uds}", "wsgi_app:app"],
        "tcp": [f"{BIN}/gunicorn", "-w", "1", "--bind", "127.0.0.1:{port}", "wsgi_app:app"],
    },
}


@contextlib.contextmanager
def workdir() -> Iterator[str]:
    root = tempfile.mkdtemp(prefix="orch-bench-", dir="/tmp")
    os.chmod(root, 0o755)
    apps = os.path.join(root, "workers")
    shutil.copytree(os.path.join(HERE, "workers"), apps)
    for dirpath, _, files in os.walk(apps):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def controller(root: str, command: list[str], port: int, processes: int = 1) -> Iterator[list[int]]:
    """The orchestrator controller with one queue and pool on /app/; yields the listener's pids."""
    site = os.path.join(root, "site")
    os.makedirs(site, exist_ok=True)
    argv = ", ".join(f'"{c}"' for c in command)
    with open(os.path.join(site, "site.yaml"), "w", encoding="utf-8") as fh:
        fh.write(f"""apiVersion: orchestrator/v1
session:
  name: bench
  timeouts: {{headerWait: 30s, idleConnection: 5m}}
  listener: {{processes: {processes}}}
queues:
  app: {{maxLength: 4096}}
urlGroups:
  app: {{queue: app, urls: ["http://127.0.0.1:{port}/app/"]}}
workers:
  app:
    queue: app
    command: [{argv}]
    cwd: {root}/workers
    startupTimeLimit: 60s
    shutdownTimeLimit: 5s
""")
    run_dir = os.path.join(root, "run")
    log = open(os.path.join(root, "controller.log"), "wb")  # noqa: SIM115
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "orchestrator",
            "run",
            site,
            "--run-dir",
            run_dir,
            "--no-watch",
            "--log-format",
            "json",
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
        env=env,
        cwd=REPO,
    )
    try:
        wait_http(port)
        pids = [
            int(p)
            for p in subprocess.run(
                ["pgrep", "-f", "orchestrator.backends.linux.listener"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.split()
            if _child_of(int(p), proc.pid)
        ]
        yield pids
    finally:
        _kill(proc)
        log.close()
        _remove_users(run_dir)


def _child_of(pid: int, parent: int) -> bool:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1]) == parent
    return False


def _remove_users(run_dir: str) -> None:
    import json

    record = os.path.join(run_dir, "state", "users.json")
    with contextlib.suppress(OSError, ValueError), open(record, encoding="utf-8") as fh:
        for name in json.load(fh):
            subprocess.run(["pkill", "-KILL", "-u", name], check=False, capture_output=True)
            subprocess.run(["userdel", name], check=False, capture_output=True)


@contextlib.contextmanager
def worker(root: str, command: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        command,
        cwd=os.path.join(root, "workers"),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        _kill(proc)


@contextlib.contextmanager
def nginx(root: str, uds: str, port: int) -> Iterator[list[int]]:
    prefix = os.path.join(root, "nginx")
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    user = "user root;" if os.geteuid() == 0 else ""
    with open(conf, "w", encoding="utf-8") as fh:
        fh.write(f"""{user}
worker_processes 1;
error_log {prefix}/logs/error.log;
pid {prefix}/nginx.pid;
events {{ worker_connections 20000; }}
http {{
  access_log {prefix}/logs/access.log;
  upstream app {{ server unix:{uds}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
""")
    proc = subprocess.Popen(
        ["nginx", "-p", prefix, "-c", conf, "-g", "daemon off;"], start_new_session=True
    )
    try:
        wait_http(port)
        pids = [
            int(p)
            for p in subprocess.run(
                ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
            ).stdout.split()
        ]
        yield [*pids, proc.pid]
    finally:
        _kill(proc)


def measure(kind: str, connections: list[int], duration: int, processes: int) -> list[tuple]:
    rows = []
    spec = WORKERS[kind]
    with workdir() as root:
        port = free_port()
        with controller(root, spec["inherit"], port, processes) as pids:
            wrk(port, 16, 2)  # warm up
            listener = {c: wrk(port, c, duration, pids) for c in connections}
        uds = os.path.join(root, "worker.sock")
        port = free_port()
        cmd = [c.replace("{uds}", uds) for c in spec["uds"]]
        with worker(root, cmd):
            wait_path(uds)
            with nginx(root, uds, port) as pids:
                wrk(port, 16, 2)
                front = {c: wrk(port, c, duration, pids) for c in connections}
        port = free_port()
        with worker(root, [c.replace("{port}", str(port)) for c in spec["tcp"]]):
            wait_http(port)
            wrk(port, 16, 2)
            alone = {c: wrk(port, c, duration) for c in connections}
    for c in connections:
        rows.append((kind, c, listener[c], front[c], alone[c]))
    return rows


def idle_connections(count: int, mode: str) -> None:
    """``count`` keep-alive connections that each made one request and now sit idle: answered one
    at a time (``sequential``), or all sent at once (``burst``: the in-flight peak, 10,000 upstream
    connections and parsers at the same time, stays in the heap afterwards)."""
    with workdir() as root:
        port = free_port()
        with controller(root, WORKERS["fast"]["inherit"], port) as pids:
            base = rss_mib(pids)
            holder = subprocess.Popen(
                [PY, "-c", _HOLDER, str(port), str(count), mode],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert holder.stdout is not None
            opened, answered = (int(x) for x in holder.stdout.readline().split())
            time.sleep(2)
            loaded = rss_mib(pids)
            latencies = []
            for _ in range(300):
                start = time.perf_counter()
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(
                        b"GET /app/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                    )
                    while s.recv(65536):
                        pass
                latencies.append((time.perf_counter() - start) * 1000)
            holder.send_signal(signal.SIGTERM)
            holder.wait(timeout=30)
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(
        f"\nidle keep-alive connections ({mode}): {opened} open, {answered} answered 200; "
        f"listener RSS {base:.1f} MiB -> {loaded:.1f} MiB "
        f"(+{(loaded - base) * 1024 / max(opened, 1):.2f} KiB per connection); "
        f"fresh request p50 {statistics.median(latencies):.2f} ms, p99 {p99:.2f} ms"
    )
    print(
        f"targets: RSS under 60 MB -> {'met' if loaded * 1.048576 < 60 else 'MISSED'}; "
        f"p99 under 50 ms -> {'met' if p99 < 50 else 'MISSED'}"
    )


_HOLDER = r"""
import resource, signal, socket, sys, time
port, count, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
socks = []
req = b"GET /app/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
answered = 0
def answer(s):
    s.settimeout(10)
    try:
        return s.recv(4096).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
for i in range(count):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        break
    s.sendall(req)
    if mode == "sequential":
        answered += answer(s)
    socks.append(s)
if mode == "burst":
    answered = sum(answer(s) for s in socks)
print(len(socks), answered, flush=True)
signal.sigwait([signal.SIGTERM])
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--workers", default="fast,uvicorn,gunicorn")
    parser.add_argument("--connections", default="64,256")
    parser.add_argument("--processes", type=int, default=1, help="listener processes")
    parser.add_argument("--idle", action="store_true", help="also the 10,000 idle connections test")
    parser.add_argument("--idle-count", type=int, default=10000)
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install wrk nginx-light", file=sys.stderr)
            return 1
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conns = [int(c) for c in args.connections.split(",")]
    rows = []
    for kind in args.workers.split(","):
        rows += measure(kind, conns, args.duration, args.processes)
    print(
        f"\n{'worker':<9}{'conns':>6} | {'front':<9}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'cpu us/req':>11}{'errors':>7} | {'rps ratio':>9}{'p99 ratio':>10}{'cpu ratio':>10}"
    )
    for kind, c, lis, ngx, alone in rows:
        for name, r in (("listener", lis), ("nginx", ngx), ("alone", alone)):
            cpu = f"{r.cpu_us_per_req:.1f}" if r.cpu_us_per_req is not None else "-"
            ratios = ""
            if name == "listener":
                cpu_ratio = (
                    f"{lis.cpu_us_per_req / ngx.cpu_us_per_req:.2f}x"
                    if lis.cpu_us_per_req and ngx.cpu_us_per_req
                    else "-"
                )
                ratios = (
                    f"{lis.rps / ngx.rps:>8.2f}x{lis.p99_ms / ngx.p99_ms:>9.2f}x{cpu_ratio:>10}"
                )
            print(
                f"{kind:<9}{c:>6} | {name:<9}{r.rps:>9.0f}{r.p50_ms:>8.2f}{r.p99_ms:>8.2f}"
                f"{cpu:>11}{r.errors:>7} | {ratios}"
            )
    for kind, c, lis, ngx, alone in rows:
        for name, r in (("listener", lis), ("nginx", ngx), ("alone", alone)):
            if r.error_detail:
                print(f"errors, {kind} {c} {name}: {r.error_detail}")
    print(
        "\ntargets (listener vs nginx, same worker, same run): throughput >= 0.90x, p99 <= 1.5x, "
        "CPU per request <= 1.1x"
    )
    if args.idle:
        for mode in ("sequential", "burst"):
            idle_connections(args.idle_count, mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
