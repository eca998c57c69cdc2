"""The listener's ``config`` message: one typed value, written by the controller's side and read
strictly by the listener process."""

from __future__ import annotations

import json

import pytest

from orchestrator.backends.linux.listener.config import build_config
from orchestrator.backends.linux.listener.message import (
    Limits,
    ListenerConfig,
    MessageError,
    QueueConfig,
    RouteConfig,
    SessionConfig,
    SocketConfig,
    Timeouts,
    TlsCertificate,
    certificate_for,
)

CONFIG = ListenerConfig(
    version=7,
    session=SessionConfig(
        name="main",
        limits=Limits(max_connections=10, max_body_bytes=1024),
        timeouts=Timeouts(header_wait_s=2.0, idle_connection_s=3.5, min_send_rate=0),
        tls=(TlsCertificate(address="127.0.0.1:0", cert_pem="CERT", key_pem="KEY"),),
    ),
    routes=(
        RouteConfig(
            prefix="http://127.0.0.1:8080/api/",
            group="api",
            queue="api",
            max_connections=5,
            timeouts=Timeouts(entity_body_s=9.0),
        ),
        RouteConfig(prefix="https://127.0.0.1:41234/", group="site", state="disabled"),
    ),
    queues=(
        QueueConfig(name="api", path="/run/q/api", state="offline", reason="AppOffline"),
        QueueConfig(name="site", path="/run/q/site", verbosity503="full", retry_after=9),
    ),
    sockets=(
        SocketConfig(
            id="http://127.0.0.1:8080", scheme="http", host="127.0.0.1", port=8080, asked_port=8080
        ),
        SocketConfig(
            id="https://127.0.0.1:0", scheme="https", host="127.0.0.1", port=41234, asked_port=0
        ),
    ),
)


def test_a_config_survives_the_channel_unchanged() -> None:
    """to_message, through JSON, then from_message gives back an equal value."""
    wire = json.loads(json.dumps(CONFIG.to_message()))
    assert CONFIG == ListenerConfig.from_message(wire)


def test_the_message_keeps_its_wire_shape() -> None:
    """The channel finds its fds by ``fd_count``; limits and timers keep the manifest's spelling."""
    message = json.loads(json.dumps(CONFIG.to_message()))
    assert "config" == message["type"]
    assert 2 == message["fd_count"]
    assert 10 == message["session"]["limits"]["maxConnections"]
    assert 2.0 == message["session"]["timeouts"]["headerWait"]
    assert {"api", "site"} == set(message["queues"])


def test_an_empty_config_round_trips() -> None:
    """The defaults (no session yet, no routes, no sockets) make a valid message too."""
    assert ListenerConfig() == ListenerConfig.from_message(ListenerConfig().to_message())


def _broken(path: tuple[str | int, ...], value: object) -> dict[str, object]:
    message = json.loads(json.dumps(CONFIG.to_message()))
    node = message
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return dict(message)


@pytest.mark.parametrize(
    ("path", "value", "field", "problem"),
    [
        (("version",), "7", "version", "expected an integer"),
        (("type",), "drain", "type", "expected 'config'"),
        (("session", "limits", "maxBodyBytes"), 1.5, "session.limits.maxBodyBytes", "integer"),
        (("session", "limits", "maxUrlBytes"), True, "session.limits.maxUrlBytes", "integer"),
        (("routes", 1, "timeouts", "entityBody"), "9s", "routes[1].timeouts.entityBody", "number"),
        (("routes", 0, "queue"), 3, "routes[0].queue", "string"),
        (("routes",), {}, "routes", "expected a list"),
        (("queues", "api", "retry_after"), None, "queues.api.retry_after", "integer"),
        (("session", "tls", 0), "pem", "session.tls[0]", "expected an object"),
        (("sockets", 1, "port"), "41234", "sockets[1].port", "integer"),
        (("sockets", 1, "asked_port"), None, "sockets[1].asked_port", "integer"),
        (("fd_count",), 3, "fd_count", "3 fds for 2 sockets"),
        (("routes", 0, "prefixx"), "/", "routes[0].prefixx", "unknown field"),
    ],
)
def test_a_bad_field_is_named_in_the_error(
    path: tuple[str | int, ...], value: object, field: str, problem: str
) -> None:
    """A field of the wrong type, an unknown one or an inconsistent count: MessageError names the
    field by its dotted path."""
    with pytest.raises(MessageError) as caught:
        ListenerConfig.from_message(_broken(path, value))
    assert field == caught.value.field
    assert problem in str(caught.value)
    assert str(caught.value).startswith(f"config message: {field}: ")


def test_a_missing_field_is_named_in_the_error() -> None:
    """A message without a field it must carry is refused, not defaulted."""
    message = json.loads(json.dumps(CONFIG.to_message()))
    del message["session"]["timeouts"]["idleConnection"]
    with pytest.raises(MessageError, match=r"session\.timeouts\.idleConnection: missing"):
        ListenerConfig.from_message(message)


def test_the_listener_builds_its_table_and_settings_from_the_message() -> None:
    """Settings come from the session, a route's timers from its own timeouts, its queue by name;
    a prefix the listener cannot parse is skipped."""
    broken = RouteConfig(prefix="http://nope", group="bad")
    config = build_config(
        ListenerConfig(
            version=CONFIG.version,
            session=CONFIG.session,
            routes=(*CONFIG.routes, broken),
            queues=CONFIG.queues,
        )
    )
    assert 7 == config.version
    assert 2.0 == config.settings.header_wait_s
    assert 0 == config.settings.min_send_rate
    assert 1024 == config.settings.max_body_bytes
    assert {"api", "site"} == set(config.queues)
    routes = {r.group: r for _, r in config.table.entries}
    assert {"api", "site"} == set(routes)
    assert 9.0 == routes["api"].entity_body_s
    assert routes["api"].queue is config.queues["api"]
    assert routes["site"].queue is None


def _tls(address: str) -> TlsCertificate:
    return TlsCertificate(address=address, cert_pem=f"cert of {address}", key_pem="key")


def _https(host: str, asked_port: int, port: int = 41234) -> SocketConfig:
    return SocketConfig(
        id=f"https://{host}:{asked_port}",
        scheme="https",
        host=host,
        port=port,
        asked_port=asked_port,
    )


def test_a_socket_asked_on_port_0_serves_the_binding_on_port_0() -> None:
    """Port 0 in the manifest, a free port bound: the binding names 0, not the bound port."""
    bindings = (_tls("127.0.0.1:8443"), _tls("127.0.0.1:0"))
    assert bindings[1] == certificate_for(_https("127.0.0.1", 0), bindings)
    assert certificate_for(_https("127.0.0.1", 0), (_tls("127.0.0.1:41234"),)) is None


@pytest.mark.parametrize(
    ("sock", "expected"),
    [
        # Two addresses on port 0, each with its own certificate (each got a port of its own).
        (_https("127.0.0.1", 0, 41234), "127.0.0.1:0"),
        (_https("127.0.0.2", 0, 41999), "127.0.0.2:0"),
        # A socket whose host has no binding of its own takes the wildcard one.
        (_https("127.0.0.3", 0), "+:0"),
        # A fixed port: the binding of that port.
        (_https("0.0.0.0", 443, 443), "0.0.0.0:443"),
    ],
)
def test_the_certificate_is_the_one_for_the_socket_as_asked(
    sock: SocketConfig, expected: str
) -> None:
    """The socket's own host first, then a binding for every host, then any host on the port."""
    bindings = (_tls("+:0"), _tls("127.0.0.1:0"), _tls("127.0.0.2:0"), _tls("0.0.0.0:443"))
    found = certificate_for(sock, bindings)
    assert found is not None
    assert expected == found.address
