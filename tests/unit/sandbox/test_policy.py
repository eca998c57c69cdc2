"""The effective sandbox: defaults by identity, the runtime's paths, the manifest's lists, ports."""

from __future__ import annotations

from orchestrator.model import (
    FilesystemDefault,
    FilesystemSandbox,
    NetworkSandbox,
    Sandbox,
    SeccompMode,
)
from orchestrator.sandbox.policy import SYSTEM_READ_ONLY, connect_port, default_denies, effective


def _paths(box: Sandbox, **kw: object) -> dict[str, str]:
    args: dict[str, object] = {"user_auto": True, "cwd": "/srv/app", "tmp_dir": "/run/o/tmp/app"}
    args.update(kw)
    eff = effective(box, **args)  # type: ignore[arg-type]
    return {r.path: r.access for r in eff.paths}


def test_auto_users_and_the_listener_default_to_deny_named_users_to_allow() -> None:
    assert default_denies(Sandbox(), user_auto=True)
    assert not default_denies(Sandbox(), user_auto=False)
    deny = Sandbox(filesystem=FilesystemSandbox(default=FilesystemDefault.DENY))
    allow = Sandbox(filesystem=FilesystemSandbox(default=FilesystemDefault.ALLOW))
    assert default_denies(deny, user_auto=False)
    assert not default_denies(allow, user_auto=True)


def test_deny_grants_the_system_the_runtime_cwd_read_only_and_tmp_read_write() -> None:
    box = Sandbox(
        filesystem=FilesystemSandbox(read_only=("/srv/shared",), read_write=("/var/lib/app/",))
    )
    paths = _paths(box, runtime=("/opt/venv",))
    for system in SYSTEM_READ_ONLY:
        assert "ro" == paths[system]
    assert "dev" == paths["/dev/null"]
    assert "ro" == paths["/proc/self"]
    assert "ro" == paths["/opt/venv"]
    assert "ro" == paths["/srv/app"]
    assert "rw" == paths["/run/o/tmp/app"]
    assert "ro" == paths["/srv/shared"]
    assert "rw" == paths["/var/lib/app"]  # trailing slash normalised
    assert "/tmp" not in paths
    assert "/home" not in paths
    assert "/srv" not in paths


def test_a_cwd_of_slash_opens_nothing_and_allow_lists_nothing() -> None:
    assert "/" not in _paths(Sandbox(), cwd="/")
    assert "/" not in _paths(Sandbox(), cwd=None)
    eff = effective(Sandbox(), user_auto=False, cwd="/srv/app", tmp_dir="/t")
    assert (False, ()) == (eff.filesystem, eff.paths)
    assert eff.seccomp
    assert not eff.landlock


def test_rw_wins_and_paths_below_an_equal_grant_are_left_out() -> None:
    box = Sandbox(
        filesystem=FilesystemSandbox(read_only=("/srv/app", "/usr/share"), read_write=("/srv/app",))
    )
    eff = effective(box, user_auto=True, cwd="/srv/app/sub", tmp_dir=None)
    paths = {r.path: r.access for r in eff.paths}
    assert "rw" == paths["/srv/app"]
    assert "/srv/app/sub" not in paths  # covered by the rw rule above it
    assert "/usr/share" not in paths  # covered by /usr


def test_network_connect_becomes_ports_and_none_means_any() -> None:
    assert effective(Sandbox(), user_auto=True, cwd=None, tmp_dir=None).connect_ports is None
    box = Sandbox(network=NetworkSandbox(connect=("127.0.0.1:5432", "[::1]:6379", "db:5432")))
    eff = effective(box, user_auto=False, cwd=None, tmp_dir=None)
    assert (5432, 6379) == eff.connect_ports
    assert eff.landlock
    assert not eff.filesystem
    nothing = effective(
        Sandbox(network=NetworkSandbox(connect=())), user_auto=False, cwd=None, tmp_dir=None
    )
    assert () == nothing.connect_ports


def test_connect_port_parses_host_port_only() -> None:
    assert 80 == connect_port("example.org:80")
    assert 443 == connect_port("[2001:db8::1]:443")
    for bad in ("example.org", ":80", "host:0", "host:65536", "host:http"):
        assert connect_port(bad) is None, bad


def test_seccomp_off_and_the_json_form() -> None:
    eff = effective(
        Sandbox(seccomp=SeccompMode.OFF, required=True), user_auto=True, cwd=None, tmp_dir=None
    )
    doc = eff.to_json()
    assert "off" == doc["seccomp"]
    assert doc["required"] is True
    assert "deny" == doc["filesystem"]["default"]  # type: ignore[index]
    assert {"path": "/etc", "access": "ro", "why": "system"} in doc["filesystem"]["paths"]  # type: ignore[index]
