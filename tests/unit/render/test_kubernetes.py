"""The Kubernetes mapping: objects, warnings only where a set field cannot carry over, clear errors."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from orchestrator.errors import ManifestError
from orchestrator.manifest import load_manifest
from orchestrator.model.live import LiveState
from orchestrator.plan.diff import make_plan
from orchestrator.render import render_kubernetes
from orchestrator.render.k8s_values import (
    NO_EQUIVALENT,
    default_uid,
    dns_label,
    gateway_duration,
    quantity_bytes,
    quantity_cpu,
)
from orchestrator.render.kubernetes import Rendering
from tests.conftest import REPO

HERE = os.path.dirname(os.path.abspath(__file__))
EVERY_FIELD = os.path.join(HERE, "data", "every-field.yaml")

MINIMAL = """\
apiVersion: orchestrator/v1
session:
  name: mini
  kubernetes:
    gatewayClassName: gc
    image: img:1
queues:
  app: {}
urlGroups:
  app:
    queue: app
    urls: ["http://+:80/"]
workers:
  app:
    queue: app
    command: [orchestrator, worker, "app:app"]
"""


def _render(path: str, namespace: str | None = None) -> Rendering:
    loaded = load_manifest(path)
    return render_kubernetes(loaded.desired, where=loaded.where, namespace=namespace)


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _doc(rendering: Rendering, kind: str, name: str) -> Mapping[str, object]:
    for doc in rendering.documents:
        meta = doc["metadata"]
        assert isinstance(meta, dict)
        if doc["kind"] == kind and meta["name"] == name:
            return doc
    raise AssertionError(f"no {kind}/{name} in {[d['kind'] for d in rendering.documents]}")


def _get(data: object, *path: str | int) -> object:
    for part in path:
        if isinstance(part, int):
            assert isinstance(data, list)
        else:
            assert isinstance(data, dict), (part, data)
        data = data[part]  # type: ignore[index]
    return data


#: The warnings of data/every-field.yaml, exactly: (JSON path, summary). docs/kubernetes.md lists
#: each one in its field's row.
EVERY_FIELD_WARNINGS = [
    (
        "session.backend",
        "no Kubernetes equivalent, not rendered: " + NO_EQUIVALENT[("session", "backend")],
    ),
    (
        "session.runDir",
        "no Kubernetes equivalent, not rendered: " + NO_EQUIVALENT[("session", "runDir")],
    ),
    *[
        (f"session.{p}", "no Kubernetes equivalent, not rendered: " + NO_EQUIVALENT[("session", p)])
        for p in (
            "timeouts.entityBody",
            "timeouts.drainEntityBody",
            "timeouts.idleConnection",
            "timeouts.headerWait",
            "timeouts.minSendRate",
            "limits.maxConnections",
            "limits.maxRequestHeaderBytes",
            "limits.maxUrlBytes",
            "limits.maxBodyBytes",
            "limits.maxHeaderFields",
        )
    ],
    (
        "session.tls",
        "the certificate for api.shop.example:8443 is a file on this host: the Gateway reads it "
        'from Secret "shop-tls-api-shop-example-8443", which is not rendered',
    ),
    *[
        (f"session.{p}", "no Kubernetes equivalent, not rendered: " + NO_EQUIVALENT[("session", p)])
        for p in (
            "listener.user",
            "listener.group",
            "listener.processes",
            "listener.openFiles",
            "metrics.address",
            "dashboard.address",
            "adminGroup",
        )
    ],
    (
        "queues.web.maxLength",
        "no Kubernetes equivalent, not rendered: " + NO_EQUIVALENT[("queues", "maxLength")],
    ),
    (
        "queues.web.verbosity503",
        "no Kubernetes equivalent, not rendered: " + NO_EQUIVALENT[("queues", "verbosity503")],
    ),
    (
        "queues.archive.state",
        "no Kubernetes equivalent: a disabled queue (its URL groups are left out, so the Gateway "
        "answers 404 where http.sys answers 503)",
    ),
    *[
        (
            f"urlGroups.web.{p}",
            "no Kubernetes equivalent, not rendered: " + NO_EQUIVALENT[("urlGroups", p)],
        )
        for p in (
            "timeouts.entityBody",
            "timeouts.drainEntityBody",
            "timeouts.idleConnection",
            "timeouts.headerWait",
            "timeouts.minSendRate",
            "maxConnections",
        )
    ],
    (
        "urlGroups.api.urls",
        "paths match case-insensitively under http.sys but case-sensitively on the Gateway: a "
        "request for /V1/ reaches this group only under http.sys",
    ),
    (
        "urlGroups.old.state",
        "disabled URL group left out (the Gateway answers 404 for its URLs, where http.sys "
        "answers 503)",
    ),
    (
        "workers.web.env",
        'secret environment variables (DB_PASSWORD) are read from Secret "web-env", which is not '
        "rendered",
    ),
    *[
        (
            f"workers.web.{p}",
            "no Kubernetes equivalent, not rendered: " + NO_EQUIVALENT[("workers", p)],
        )
        for p in (
            "user",
            "group",
            "groups",
            "allowRoot",
            "restart.initialBackoff",
            "restart.maxBackoff",
            "restart.resetAfter",
        )
    ],
    (
        "workers.web.rapidFailProtection",
        "no Kubernetes equivalent, not rendered: rapid-fail protection (Kubernetes restarts a "
        "crashing pod forever, with CrashLoopBackOff)",
    ),
    (
        "workers.web.recycling.time",
        "no Kubernetes equivalent, not rendered: periodic recycling (run 'kubectl rollout restart "
        "deployment/web' on a schedule, e.g. from a CronJob)",
    ),
    *[
        (
            f"workers.web.{p}",
            "no Kubernetes equivalent, not rendered: " + NO_EQUIVALENT[("workers", p)],
        )
        for p in (
            "recycling.requests",
            "recycling.memory",
            "recycling.schedule",
            "limits.pids",
            "limits.openFiles",
        )
    ],
]


def test_a_manifest_using_every_field_renders_with_exactly_the_documented_warnings() -> None:
    """Every warning is expected, on the field it is about; nothing else warns."""
    rendering = _render(EVERY_FIELD)
    actual = [(w.location.path if w.location else "", w.summary) for w in rendering.warnings]
    assert EVERY_FIELD_WARNINGS == actual


def test_every_warning_reason_is_quoted_in_the_mapping_table() -> None:
    """docs/kubernetes.md quotes each "no equivalent" reason, so the table and the code agree."""
    with open(os.path.join(REPO, "docs", "kubernetes.md"), encoding="utf-8") as fh:
        text = fh.read()
    missing = [why for why in NO_EQUIVALENT.values() if why not in text]
    assert [] == missing


def test_a_manifest_of_defaults_renders_without_warnings(tmp_path: Path) -> None:
    """Defaults (rapid-fail protection on, recycling every 29h, ...) never warn."""
    rendering = _render(_write(tmp_path, MINIMAL))
    assert [] == [w.summary for w in rendering.warnings]


def test_a_pool_becomes_a_least_privilege_deployment() -> None:
    """processes, env, cwd, limits, health, startup and shutdown limits carry over."""
    rendering = _render(EVERY_FIELD)
    deploy = _doc(rendering, "Deployment", "web")
    pod = _get(deploy, "spec", "template", "spec")
    container = _get(pod, "containers", 0)
    assert 3 == _get(deploy, "spec", "replicas")
    assert [
        "orchestrator",
        "worker",
        "shop.web:app",
        "--threads",
        "16",
        "--listen",
        "0.0.0.0:8080",
    ] == _get(container, "command")
    assert "/srv/shop/apps/web" == _get(container, "workingDir")
    assert {"cpu": "500m", "memory": "256Mi"} == _get(container, "resources", "limits")
    probe = {
        "httpGet": {"path": "/healthz", "port": 8080},
        "periodSeconds": 10,
        "timeoutSeconds": 2,
        "failureThreshold": 5,
    }
    assert probe == _get(container, "readinessProbe")
    assert probe == _get(container, "livenessProbe")
    assert {
        "httpGet": {"path": "/healthz", "port": 8080},
        "periodSeconds": 5,
        "failureThreshold": 6,
    } == _get(container, "startupProbe")
    assert 20 == _get(pod, "terminationGracePeriodSeconds")
    assert {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": default_uid("web"),
        "runAsGroup": default_uid("web"),
    } == _get(container, "securityContext")
    assert {"type": "RuntimeDefault"} == _get(pod, "securityContext", "seccompProfile")
    assert "shop-web" == _get(pod, "serviceAccountName")


def test_secret_environment_values_are_never_written() -> None:
    """A secret value is read from a Secret; plain values are inlined."""
    rendering = _render(EVERY_FIELD)
    env = _get(
        _doc(rendering, "Deployment", "web"), "spec", "template", "spec", "containers", 0, "env"
    )
    assert [
        {
            "name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "web-env", "key": "DB_PASSWORD"}},
        },
        {"name": "SHOP_MODE", "value": "production"},
    ] == env
    assert "hunter2" not in repr(rendering.documents)


def test_a_pool_override_wins_over_the_session_defaults() -> None:
    """image, serviceAccountPrefix, command and runAsUser of workers.api replace the session's."""
    rendering = _render(EVERY_FIELD)
    pod = _get(_doc(rendering, "Deployment", "api"), "spec", "template", "spec")
    assert "ghcr.io/example/shop-api:2.0" == _get(pod, "containers", 0, "image")
    assert ["node", "server.js", "--port", "8080"] == _get(pod, "containers", 0, "command")
    assert 20001 == _get(pod, "securityContext", "runAsUser")
    assert "api-api" == _get(pod, "serviceAccountName")
    web_labels = _get(_doc(rendering, "Deployment", "web"), "metadata", "labels")
    assert isinstance(web_labels, dict)
    assert ("web", "frontend") == (web_labels["team"], web_labels["tier"])


def test_url_groups_become_routes_on_listeners_per_scheme_port_and_host() -> None:
    """An explicit host gives hostnames and its own listener; + and * give neither."""
    rendering = _render(EVERY_FIELD)
    gateway = _doc(rendering, "Gateway", "shop")
    listeners = _get(gateway, "spec", "listeners")
    assert isinstance(listeners, list)
    assert [
        ("http-80", None, 80, "HTTP"),
        ("https-443", None, 443, "HTTPS"),
        ("https-8443-api.shop.example", "api.shop.example", 8443, "HTTPS"),
    ] == [(x["name"], x.get("hostname"), x["port"], x["protocol"]) for x in listeners]
    assert [{"group": "", "kind": "Secret", "name": "shop-site-tls"}] == _get(
        listeners, 1, "tls", "certificateRefs"
    )
    api = _doc(rendering, "HTTPRoute", "api")
    assert ["api.shop.example"] == _get(api, "spec", "hostnames")
    assert [{"path": {"type": "PathPrefix", "value": "/v1"}}] == _get(
        api, "spec", "rules", 0, "matches"
    )
    web = _doc(rendering, "HTTPRoute", "web-https-443")
    assert "hostnames" not in _get(web, "spec")  # type: ignore[operator]
    assert {"request": "15s"} == _get(web, "spec", "rules", 0, "timeouts")
    assert [{"name": "web", "port": 80}] == _get(web, "spec", "rules", 0, "backendRefs")


def test_disabled_groups_and_groups_of_disabled_queues_are_left_out() -> None:
    """No route for urlGroups.old (disabled) nor urlGroups.archive (its queue is disabled)."""
    rendering = _render(EVERY_FIELD)
    routes = [_get(d, "metadata", "name") for d in rendering.documents if d["kind"] == "HTTPRoute"]
    assert ["api", "web-http-80", "web-https-443"] == routes


def test_each_queue_admits_only_the_gateway_pods() -> None:
    """The NetworkPolicy selects the queue's pods and admits only the selected Gateway pods."""
    policy = _doc(_render(EVERY_FIELD), "NetworkPolicy", "web")
    assert {
        "podSelector": {
            "matchLabels": {"orchestrator/queue": "web", "orchestrator/session": "shop"}
        },
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "gateways"}
                        },
                        "podSelector": {"matchLabels": {"app": "shop-gateway"}},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 8080}],
            }
        ],
    } == policy["spec"]


def test_a_service_selects_the_pods_of_the_pools_serving_its_queue() -> None:
    """Service web selects the queue label that every pool serving web carries on its pods."""
    rendering = _render(EVERY_FIELD)
    selector = _get(_doc(rendering, "Service", "web"), "spec", "selector")
    pod_labels = _get(
        _doc(rendering, "Deployment", "web"), "spec", "template", "metadata", "labels"
    )
    assert isinstance(selector, dict)
    assert isinstance(pod_labels, dict)
    assert selector.items() <= pod_labels.items()


def test_namespace_option_replaces_the_session_default_only(tmp_path: Path) -> None:
    """--namespace moves what has no namespace of its own; a pool's own namespace stays."""
    text = MINIMAL.replace(
        '    command: [orchestrator, worker, "app:app"]\n',
        '    command: [orchestrator, worker, "app:app"]\n    kubernetes:\n      namespace: apps\n',
    )
    rendering = _render(_write(tmp_path, text), namespace="staging")
    where = {(d["kind"], _get(d, "metadata", "namespace")) for d in rendering.documents}
    assert ("Gateway", "staging") in where
    assert ("Deployment", "apps") in where
    assert ("HTTPRoute", "apps") in where
    route = _doc(rendering, "HTTPRoute", "app")
    assert "staging" == _get(route, "spec", "parentRefs", 0, "namespace")
    assert "All" == _get(
        _doc(rendering, "Gateway", "mini"),
        "spec",
        "listeners",
        0,
        "allowedRoutes",
        "namespaces",
        "from",
    )


def test_an_invalid_namespace_option_is_an_error(tmp_path: Path) -> None:
    """--namespace must be a DNS label."""
    loaded = load_manifest(_write(tmp_path, MINIMAL))
    with pytest.raises(ManifestError, match="not a valid Kubernetes namespace"):
        render_kubernetes(loaded.desired, namespace="Not_OK")


def _error(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ManifestError) as info:
        _render(_write(tmp_path, text))
    return [d.render() for d in info.value.diagnostics if d.severity == "error"]


def test_a_pool_with_no_image_is_an_error_with_its_location(tmp_path: Path) -> None:
    """Neither the pool nor the session names an image: file, line, path and what to set."""
    errors = _error(tmp_path, MINIMAL.replace("    image: img:1\n", ""))
    assert 1 == len(errors)
    assert re.match(
        r".*site\.yaml:13:3: workers\.app: pool \"app\" has no container image\n", errors[0]
    )
    assert "workers.app.kubernetes.image" in errors[0]


def test_a_command_the_renderer_cannot_adapt_is_an_error_with_its_location(tmp_path: Path) -> None:
    """Only the portable runner can be given --listen; anything else needs kubernetes.command."""
    errors = _error(
        tmp_path,
        MINIMAL.replace('[orchestrator, worker, "app:app"]', "[gunicorn, app:app]"),
    )
    assert 1 == len(errors)
    assert re.match(
        r".*site\.yaml:16:5: workers\.app\.command: command cannot be adapted", errors[0]
    )
    assert "workers.app.kubernetes.command" in errors[0]


def test_a_runner_command_that_binds_its_own_address_cannot_be_adapted(tmp_path: Path) -> None:
    """--bind or --listen in the command would fight the pod's one address."""
    errors = _error(
        tmp_path,
        MINIMAL.replace('"app:app"]', '"app:app", --bind, "unix:/tmp/s"]'),
    )
    assert 1 == len(errors)
    assert "command cannot be adapted to a container: it already passes --bind" in errors[0]


def test_python_dash_m_runner_is_adapted_too(tmp_path: Path) -> None:
    """``python3 -m orchestrator worker`` is the same runner."""
    text = MINIMAL.replace(
        '[orchestrator, worker, "app:app"]',
        '[/usr/bin/python3, -m, orchestrator, worker, "app:app"]',
    )
    command = _get(
        _doc(_render(_write(tmp_path, text)), "Deployment", "app"),
        "spec",
        "template",
        "spec",
        "containers",
        0,
        "command",
    )
    assert ["orchestrator", "worker", "app:app", "--listen", "0.0.0.0:8080"] == command


def test_a_missing_gateway_class_is_an_error(tmp_path: Path) -> None:
    """The Gateway cannot be rendered without its class."""
    errors = _error(tmp_path, MINIMAL.replace("    gatewayClassName: gc\n", ""))
    assert 1 == len(errors)
    assert "session.kubernetes.gatewayClassName is not set" in errors[0]


def test_colliding_object_names_are_an_error(tmp_path: Path) -> None:
    """Two pools whose ServiceAccounts get one name: the second names the first."""
    text = MINIMAL + (
        "  b:\n"
        "    queue: app\n"
        '    command: [orchestrator, worker, "b:app"]\n'
        "    kubernetes:\n"
        "      serviceAccountPrefix: orch-a-\n"
        "  a-b:\n"
        "    queue: app\n"
        '    command: [orchestrator, worker, "ab:app"]\n'
    )
    errors = _error(tmp_path, text)
    assert 1 == len(errors)
    assert (
        'ServiceAccount name "orch-a-b" in namespace "default" is taken by workers.a-b' in errors[0]
    )


def test_pools_of_one_queue_must_share_a_namespace(tmp_path: Path) -> None:
    """The queue's Service selects both pools' pods, which only works within one namespace."""
    text = MINIMAL + (
        "  other:\n"
        "    queue: app\n"
        '    command: [orchestrator, worker, "o:app"]\n'
        "    kubernetes:\n"
        "      namespace: elsewhere\n"
    )
    errors = _error(tmp_path, text)
    assert 1 == len(errors)
    assert "workers.other.kubernetes.namespace" in errors[0]


def test_labels_the_renderer_selects_on_cannot_be_set(tmp_path: Path) -> None:
    """A user label under orchestrator/ would break the selectors."""
    text = MINIMAL.replace(
        "    image: img:1\n", "    image: img:1\n    labels:\n      orchestrator/pool: x\n"
    )
    errors = _error(tmp_path, text)
    assert 1 == len(errors)
    assert 'label "orchestrator/pool" is set by the renderer' in errors[0]


def test_a_relative_cwd_that_climbs_out_of_the_app_root_is_an_error(tmp_path: Path) -> None:
    """cwd ../x would be outside the manifest's directory in the image."""
    text = MINIMAL.replace('"app:app"]\n', '"app:app"]\n    cwd: ../elsewhere\n')
    errors = _error(tmp_path, text)
    assert 1 == len(errors)
    assert "climbs out of the manifest's directory" in errors[0]


def test_changing_only_kubernetes_fields_plans_nothing(tmp_path: Path) -> None:
    """The backends never see kubernetes: settings, so editing them restarts no worker."""
    before = load_manifest(_write(tmp_path, MINIMAL)).desired
    edited = MINIMAL.replace("image: img:1", "image: img:2\n    namespace: other").replace(
        '"app:app"]\n', '"app:app"]\n    kubernetes:\n      runAsUser: 5000\n'
    )
    after = load_manifest(_write(tmp_path, edited)).desired
    assert before.kubernetes != after.kubernetes
    live = LiveState(resources=dict(before.resources), applied=dict(before.resources))
    assert [] == list(make_plan(after, live).steps)


def test_the_default_uid_depends_only_on_the_pool_name() -> None:
    """Adding a pool never changes another pool's uid; uids are non-zero and not system ids."""
    assert default_uid("web") == default_uid("web")
    assert 100_000 <= default_uid("web") < 1_000_000
    assert default_uid("web") != default_uid("api")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("web", "web"), ("Web_App", "web-app"), ("9lives", "9lives"), ("a" * 70, "a" * 54 + "-")],
)
def test_names_become_dns_labels(text: str, expected: str) -> None:
    """Invalid characters become '-', and a long name keeps a hash of the whole."""
    assert dns_label(text).startswith(expected)
    assert len(dns_label(text)) <= 63
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", dns_label(text))


def test_service_names_start_with_a_letter() -> None:
    """A Service name is a DNS-1035 label."""
    assert "x-9lives" == dns_label("9lives", letter_first=True)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(15, "15s"), (120, "2m"), (0.25, "250ms"), (3725.5, "1h2m5s500ms"), (0, "0s")],
)
def test_gateway_durations(seconds: float, expected: str) -> None:
    """Durations use the Gateway API's h/m/s/ms spelling."""
    assert expected == gateway_duration(seconds)


def test_quantities() -> None:
    """Bytes and CPUs use Kubernetes quantities."""
    assert ("256Mi", "1Gi", "1000") == (
        quantity_bytes(256 << 20),
        quantity_bytes(1 << 30),
        quantity_bytes(1000),
    )
    assert ("500m", "2") == (quantity_cpu(0.5), quantity_cpu(2.0))
