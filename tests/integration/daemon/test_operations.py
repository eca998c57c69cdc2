"""Operating a controller: Prometheus metrics, sd_notify readiness, SIGHUP reloads."""

from __future__ import annotations

import os
import signal
import socket
import urllib.request

import pytest

from tests.support.controller import (
    ANY_PORT,
    Names,
    quickstart_manifest,
    running_controller,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_metrics_expose_reconciles_workers_and_listener_counters(
    world_dir: str, names: Names
) -> None:
    """session.metrics.address serves Prometheus text with the documented families; port 0 binds a
    free port, which status and the metrics_serving event report."""
    manifest = quickstart_manifest(ANY_PORT, names).replace(
        "session:\n  name: test\n",
        "session:\n  name: test\n  metrics: {address: '127.0.0.1:0'}\n",
    )
    with running_controller(world_dir, manifest) as ctl:
        assert 200 == ctl.get("/hello/").status
        address = str(ctl.state()["metrics"]["address"])  # type: ignore[index]
        host, _, port = address.rpartition(":")
        assert "127.0.0.1" == host
        assert int(port) > 0
        (serving,) = ctl.events("metrics_serving")
        assert ("127.0.0.1:0", address) == (serving["asked"], serving["address"])
        metrics = int(port)

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as resp:
                return str(resp.read().decode())

        text = str(
            wait_until(
                lambda: (t := scrape()) and 'status="2xx"' in t and t,
                15,
                "listener counters in the metrics",
            )
        )
        assert 'orchestrator_reconcile_total{result="success"}' in text
        assert f'orchestrator_workers{{pool="{names.hello}",state="ready"}} 1.0' in text
        assert "orchestrator_config_last_reload_successful 1.0" in text
        assert f'orchestrator_requests_total{{queue="{names.hello}",status="2xx"}}' in text
        assert f'orchestrator_pool_halted{{pool="{names.hello}"}} 0.0' in text


def test_ready_is_notified_after_the_first_convergence(world_dir: str, names: Names) -> None:
    """With NOTIFY_SOCKET set (systemd Type=notify), READY=1 arrives once everything is up."""
    port = ANY_PORT
    path = os.path.join(world_dir, "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(60)
        with running_controller(
            world_dir,
            quickstart_manifest(port, names),
            converge=False,
            env_extra={"NOTIFY_SOCKET": path},
        ) as ctl:
            message = sock.recv(4096).decode()
            assert "READY=1" in message
            assert "STATUS=running manifest" in message
            assert ctl.converged()
            assert 200 == ctl.get("/notes/").status


def test_sighup_reloads_the_manifest(world_dir: str, names: Names) -> None:
    """--no-watch: an edited manifest applies on SIGHUP (a new URL prefix becomes routable)."""
    port = ANY_PORT
    manifest = quickstart_manifest(port, names)
    with running_controller(world_dir, manifest, args=("--no-watch",)) as ctl:
        assert 404 == ctl.get("/more/").status
        ctl.write(
            "site.yaml",
            manifest.replace(
                f'urls: ["http://127.0.0.1:{port}/notes/"]',
                f'urls: ["http://127.0.0.1:{port}/notes/", "http://127.0.0.1:{port}/more/"]',
            ),
        )
        os.kill(ctl.proc.pid, signal.SIGHUP)
        wait_until(lambda: ctl.get("/more/").status == 200, 10, "/more/ to be routed to notes")
