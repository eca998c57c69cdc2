"""The dashboard's server side against a real controller (no browser): the JSON API mirrors
``status --json``, only GET and HEAD are served, every answer carries the security headers, the
page's files cannot be escaped, the history fills under traffic through the listener, and a
protected dashboard answers 401 that reveals nothing until the token or password is right, with a
reload that changes the credentials or the address taking effect without a restart.
Real processes on 127.0.0.1, the dashboard on port 0; every wait is bounded."""

from __future__ import annotations

import base64
import http.client as httpclient
import json
import os
import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from orchestrator.controller.dashboard.auth import hash_password
from tests.support.controller import (
    ORCHESTRATOR,
    REPO,
    Controller,
    HttpResult,
    Names,
    quickstart_example,
    quickstart_manifest,
    running_controller,
    wait_until,
)

pytestmark = pytest.mark.integration

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ROUTES = ["/", "/api/status", "/api/events?since=0", "/api/history", "/api/plan"]
TOKEN = "dashboard-token-of-this-test-0123456789"
OPEN = '{address: "127.0.0.1:0"}'


def _request(
    url: str, path: str, *, method: str = "GET", headers: dict[str, str] | None = None
) -> HttpResult:
    """One request on a fresh connection, the path sent as written (no normalisation)."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    conn = httpclient.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        given = {k.lower() for k in headers or {}}
        conn.putrequest(method, path, skip_host="host" in given, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return HttpResult(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


def _json(url: str, path: str, headers: dict[str, str] | None = None) -> dict[str, object]:
    answer = _request(url, path, headers=headers)
    assert answer.status == 200, answer
    assert answer.headers["content-type"] == "application/json"
    return answer.json()


def _status_json(ctl: Controller) -> dict[str, object]:
    """``orchestrator status --json``, as an operator runs it."""
    done = subprocess.run(
        [*ORCHESTRATOR, "status", "--json", "--run-dir", ctl.run_dir],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert isinstance(data, dict)
    return data


@pytest.fixture
def open_dashboard(world_dir: str, names: Names) -> Iterator[tuple[Controller, str]]:
    """A controller with an unauthenticated dashboard on a free loopback port."""
    with running_controller(world_dir, quickstart_manifest(names=names, dashboard=OPEN)) as ctl:
        yield ctl, ctl.dashboard_url()


def test_api_status_is_the_status_document(open_dashboard: tuple[Controller, str]) -> None:
    ctl, url = open_dashboard
    api = _json(url, "/api/status")
    cli = _status_json(ctl)
    assert sorted(api) == sorted(cli)  # the same members, nothing added, nothing missing
    moving = {"workers", "pools", "listener", "_at"}  # uptimes and counters tick between reads
    assert {k: v for k, v in api.items() if k not in moving} == {
        k: v for k, v in cli.items() if k not in moving
    }
    assert api["dashboard"] == {"url": url}
    workers = api["workers"]
    assert isinstance(workers, list)
    assert {w["pid"] for w in workers} == {w["pid"] for w in cli["workers"]}  # type: ignore[attr-defined]


def test_only_get_and_head_are_served(open_dashboard: tuple[Controller, str]) -> None:
    _, url = open_dashboard
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"):
        for path in ("/", "/api/status", "/nope"):
            answer = _request(url, path, method=method)
            assert (answer.status, answer.headers.get("allow")) == (405, "GET, HEAD"), (
                method,
                path,
            )
    head = _request(url, "/api/status", method="HEAD")
    assert head.status == 200
    assert head.body == b""
    assert int(head.headers["content-length"]) > 0


def test_every_answer_carries_the_security_headers(
    open_dashboard: tuple[Controller, str],
) -> None:
    _, url = open_dashboard
    answers = [_request(url, path) for path in [*ROUTES, "/nope", "/static/no-such.css"]]
    answers.append(_request(url, "/api/status", method="POST"))
    answers.append(_request(url, "/api/events?since=x"))
    for answer in answers:
        assert answer.headers.get("content-security-policy") == CSP, answer
        assert answer.headers.get("x-content-type-options") == "nosniff"
        assert answer.headers.get("referrer-policy") == "no-referrer"
    assert [a.status for a in answers][len(ROUTES) :] == [404, 404, 405, 400]


def test_the_page_files_cannot_be_escaped(open_dashboard: tuple[Controller, str]) -> None:
    _, url = open_dashboard
    for path in (
        "/static/../server.py",
        "/static/../../daemon.py",
        "/static/%2e%2e/server.py",
        "/static/..%2fserver.py",
        "/static//etc/passwd",
        "/static/.hidden",
        "/static/",
        "/server.py",
        "/../server.py",
    ):
        answer = _request(url, path)
        assert answer.status == 404, (path, answer)
        assert b"import" not in answer.body


def test_a_host_header_that_is_not_loopback_is_refused(
    open_dashboard: tuple[Controller, str],
) -> None:
    """Without auth, a page on another site that resolves its name to 127.0.0.1 reads nothing."""
    _, url = open_dashboard
    port = urlsplit(url).port
    assert _request(url, "/api/status", headers={"Host": f"evil.example:{port}"}).status == 421
    assert _request(url, "/api/status", headers={"Host": f"localhost:{port}"}).status == 200


def test_history_gains_points_after_traffic(
    open_dashboard: tuple[Controller, str], names: Names
) -> None:
    ctl, url = open_dashboard
    history = _json(url, "/api/history")
    assert (history["interval_s"], history["window_s"]) == (2.0, 300.0)

    def served() -> dict[str, object] | None:
        for _ in range(10):
            assert ctl.get("/hello/").status == 200
        groups = _json(url, "/api/history")["groups"]
        assert isinstance(groups, dict)
        busy = [p for p in groups.get(names.hello, []) if p["rps"] > 0]
        return busy[-1] if busy else None

    point = wait_until(served, 20, "a history point with requests for the hello group")
    assert isinstance(point, dict)
    assert point["status"]["2xx"] > 0
    assert point["p50_ms"] is not None
    assert point["p99_ms"] >= point["p50_ms"]
    queues = _json(url, "/api/history")["queues"]
    assert isinstance(queues, dict)
    assert names.hello in queues


def test_events_and_the_last_plan(open_dashboard: tuple[Controller, str]) -> None:
    _, url = open_dashboard
    events = _json(url, "/api/events?since=0")["events"]
    assert isinstance(events, list)
    serving = [e for e in events if e["event"] == "dashboard_serving"]
    assert [e["url"] for e in serving] == [url]
    last = max(int(e["seq"]) for e in events)
    newer = _json(url, f"/api/events?since={last}")["events"]
    assert isinstance(newer, list)
    assert all(int(e["seq"]) > last for e in newer)
    plan = _json(url, "/api/plan")
    assert "orchestrator will perform the following actions" in str(plan["text"])
    assert "\x1b[" not in str(plan["text"])  # no colour
    assert isinstance(plan["generation"], int)
    assert plan["generation"] >= 1


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _refused_without_revealing(answer: HttpResult, scheme: str, names: Names) -> None:
    assert answer.status == 401
    assert answer.headers["www-authenticate"].startswith(scheme)
    assert answer.body == b"401 unauthorized\n"
    for secret in ("test", names.hello, names.notes, "orchestrator run"):
        assert secret.encode() not in answer.body


def test_token_and_basic_auth_and_a_reload_that_moves_the_dashboard(
    world_dir: str, names: Names
) -> None:
    token_file = os.path.join(world_dir, "dashboard.token")
    passwd_file = os.path.join(world_dir, "dashboard.passwd")
    with open(token_file, "w", encoding="utf-8") as fh:
        fh.write(TOKEN + "\n")
    with open(passwd_file, "w", encoding="utf-8") as fh:
        fh.write("alice:" + hash_password("wonderland", iterations=1000) + "\n")
    with_token = f'{{address: "127.0.0.1:0", auth: {{tokenFile: {token_file}}}}}'
    manifest = quickstart_manifest(names=names, dashboard=with_token)
    with running_controller(world_dir, manifest) as ctl:
        url = ctl.dashboard_url()
        for path in [*ROUTES, "/static/index.html", "/nope"]:
            _refused_without_revealing(_request(url, path), "Bearer", names)
            wrong = {"Authorization": f"Bearer {TOKEN}x"}
            _refused_without_revealing(_request(url, path, headers=wrong), "Bearer", names)
        right = {"Authorization": f"Bearer {TOKEN}"}
        assert _json(url, "/api/status", right)["dashboard"] == {"url": url}
        # A token is not a password, nor the other way round.
        _refused_without_revealing(_request(url, "/", headers=_basic("x", TOKEN)), "Bearer", names)

        # The same address with basic auth: the file is read on reload, the socket stays.
        with_basic = f'{{address: "127.0.0.1:0", auth: {{basicFile: {passwd_file}}}}}'
        ctl.write("site.yaml", quickstart_manifest(names=names, dashboard=with_basic))

        def basic_in_force() -> bool:
            return _request(url, "/api/plan", headers=_basic("alice", "wonderland")).status == 200

        wait_until(basic_in_force, 30, "the reload to put basic auth in force")
        assert ctl.dashboard_url() == url
        _refused_without_revealing(_request(url, "/api/status"), "Basic", names)
        for user, password in (("alice", "looking-glass"), ("bob", "wonderland")):
            answer = _request(url, "/api/status", headers=_basic(user, password))
            _refused_without_revealing(answer, "Basic", names)
        _refused_without_revealing(_request(url, "/", headers=right), "Basic", names)

        # Another address: the dashboard moves there, and the old port stops answering.
        moved = '{address: "127.0.0.2:0", auth: {basicFile: ' + passwd_file + "}}"
        ctl.write("site.yaml", quickstart_manifest(names=names, dashboard=moved))
        new_url = str(
            wait_until(
                lambda: (u := ctl.dashboard_url()) != url and u,
                30,
                "the dashboard to move to 127.0.0.2",
            )
        )
        assert new_url.startswith("http://127.0.0.2:")
        assert _request(new_url, "/api/status", headers=_basic("alice", "wonderland")).status == 200
        with pytest.raises(ConnectionRefusedError):
            _request(url, "/api/status")


def test_the_quickstart_example_serves_its_dashboard_on_a_free_port(
    world_dir: str, names: Names
) -> None:
    """The example itself (its fixed ports rewritten to 0 by the harness): run prints the URL."""
    with running_controller(world_dir, quickstart_example(names)) as ctl:
        url = ctl.dashboard_url()
        assert url.startswith("http://127.0.0.1:")
        assert not url.endswith(":9180/")
        serving = ctl.events("dashboard_serving")
        assert [(e["asked"], e["url"]) for e in serving] == [("127.0.0.1:0", url)]
        pools = _json(url, "/api/status")["pools"]
        assert isinstance(pools, dict)
        assert sorted(pools) == sorted([names.hello, names.notes])


def test_validate_refuses_an_open_dashboard_without_auth(tmp_path: object) -> None:
    site = os.path.join(str(tmp_path), "site.yaml")
    with open(site, "w", encoding="utf-8") as fh:
        fh.write(quickstart_manifest(dashboard='{address: "0.0.0.0:9180"}'))
    done = subprocess.run(
        [*ORCHESTRATOR, "validate", site],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 1
    assert (
        f'{site}:5:15: session.dashboard.address: dashboard address "0.0.0.0:9180" is not '
        "loopback and has no auth"
    ) in done.stderr.splitlines()
