"""session.dashboard in the manifest: loopback or auth, one auth file, its port, the host check."""

from __future__ import annotations

from pathlib import Path

from orchestrator.errors import ManifestError
from orchestrator.manifest import load_manifest
from orchestrator.manifest.identities import HostIdentities


def _site(tmp_path: Path, dashboard: str) -> str:
    path = tmp_path / "site.yaml"
    path.write_text(
        "apiVersion: orchestrator/v1\n"
        f"session:\n  name: shop\n  dashboard:\n{dashboard}"
        "queues:\n  api: {}\n"
        "urlGroups:\n  api: {queue: api, urls: ['http://127.0.0.1:8080/api/']}\n"
        "workers:\n  api: {queue: api, command: ['true']}\n"
    )
    return str(path)


def _problems(path: str, strict: bool = False) -> list[tuple[str, str, str]]:
    try:
        loaded = load_manifest(path, identities=HostIdentities(), strict_identities=strict)
        diags = list(loaded.warnings)
    except ManifestError as exc:
        diags = list(exc.diagnostics)
    return [(d.location.path if d.location else "", str(d.severity), d.summary) for d in diags]


def test_loopback_addresses_need_no_auth(tmp_path: Path) -> None:
    for address in ("127.0.0.1:9180", "127.9.9.9:0", '"[::1]:9180"', "localhost:9180"):
        assert [] == _problems(_site(tmp_path, f"    address: {address}\n"))


def test_any_other_address_without_auth_is_refused(tmp_path: Path) -> None:
    for address in ("0.0.0.0:9180", "192.168.1.5:9180", '"[::]:9180"', "dash.example:9180"):
        shown = address.strip('"')
        assert [
            (
                "session.dashboard.address",
                "error",
                f'dashboard address "{shown}" is not loopback and has no auth',
            )
        ] == _problems(_site(tmp_path, f"    address: {address}\n"))


def test_with_a_token_file_any_address_is_allowed(tmp_path: Path) -> None:
    (tmp_path / "dashboard.token").write_text("x" * 32)
    site = _site(tmp_path, "    address: 0.0.0.0:9180\n    auth: {tokenFile: dashboard.token}\n")
    assert [] == _problems(site)
    loaded = load_manifest(site)
    session = loaded.desired.session
    assert session is not None
    assert session.dashboard.auth is not None
    # Relative to the manifest file, as TLS files are.
    assert session.dashboard.auth.token_file == str(tmp_path / "dashboard.token")


def test_a_missing_auth_file_warns_in_validate_and_fails_run(tmp_path: Path) -> None:
    site = _site(tmp_path, "    address: 0.0.0.0:9180\n    auth: {basicFile: nope.passwd}\n")
    summary = f'dashboard password file "{tmp_path / "nope.passwd"}" does not exist on this host'
    assert [("session.dashboard.auth.basicFile", "warning", summary)] == _problems(site)
    assert [("session.dashboard.auth.basicFile", "error", summary)] == _problems(site, strict=True)


def test_auth_names_exactly_one_file(tmp_path: Path) -> None:
    for auth in ("{}", "{tokenFile: a, basicFile: b}"):
        site = _site(tmp_path, f"    address: 127.0.0.1:9180\n    auth: {auth}\n")
        errors = [p for p in _problems(site) if p[1] == "error"]
        assert [
            (
                "session.dashboard.auth",
                "error",
                "session.dashboard.auth must name exactly one of tokenFile and basicFile",
            )
        ] == errors


def test_the_port_may_not_be_a_url_prefix_or_the_metrics_port(tmp_path: Path) -> None:
    assert [
        ("session.dashboard.address", "error", "dashboard port 8080 is also used by a URL prefix")
    ] == _problems(_site(tmp_path, "    address: 127.0.0.1:8080\n"))
    site = _site(tmp_path, "    address: 127.0.0.1:9101\n")
    text = (
        Path(site)
        .read_text()
        .replace("  dashboard:", "  metrics: {address: 127.0.0.1:9101}\n  dashboard:")
    )
    Path(site).write_text(text)
    assert [
        ("session.dashboard.address", "error", "dashboard port 9101 is also the metrics port")
    ] == _problems(site)
    assert [] == _problems(_site(tmp_path, "    address: 127.0.0.1:0\n"))  # 0 is any free port
