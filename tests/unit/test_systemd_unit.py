"""docs/systemd/orchestrator.service: systemd accepts it (``systemd-analyze verify`` where it is
installed), it keeps state where the controller looks for it, and every command line in it is one
the CLI accepts, so the shipped unit cannot rot (issue 12 item 5)."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys

import pytest

from orchestrator.cli.main import build_parser

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = os.path.join(REPO, "docs", "systemd", "orchestrator.service")
#: Where the unit's install comment puts the checkout and its virtual environment.
INSTALL = "/opt/orchestrator"
BINARY = f"{INSTALL}/venv/bin/orchestrator"


def _service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    with open(UNIT, encoding="utf-8") as fh:
        parser.read_file(fh)
    return parser["Service"]


def _argv(line: str) -> list[str]:
    argv = shlex.split(line.lstrip("-@+!:"))  # prefixes: "-" ignores the exit status, etc.
    assert BINARY == argv[0]
    return argv[1:]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: object) -> None:
    """No warning at all (unknown keys, bad values, a missing binary): the binary is pointed at
    this checkout's, since verify checks that the command exists."""
    here = os.path.join(os.path.dirname(sys.executable), "orchestrator")
    with open(UNIT, encoding="utf-8") as fh:
        text = fh.read().replace(BINARY, here)
    copy = os.path.join(str(tmp_path), "orchestrator.service")
    with open(copy, "w", encoding="utf-8") as fh:
        fh.write(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", copy], capture_output=True, text=True, timeout=60, check=False
    )
    assert 0 == proc.returncode, proc.stderr
    assert "orchestrator.service" not in proc.stderr + proc.stdout


def test_state_survives_and_sockets_survive_a_restart() -> None:
    """StateDirectory= keeps last-known-good and users across stops; RuntimeDirectoryPreserve=
    restart keeps the sockets' directory across restarts; the controller is told both."""
    service = _service()
    argv = _argv(service["ExecStart"])
    assert "restart" == service["RuntimeDirectoryPreserve"]
    state = service["StateDirectory"]
    assert argv[argv.index("--state-dir") + 1] == f"/var/lib/{state}"
    assert argv[argv.index("--run-dir") + 1] == f"/run/{service['RuntimeDirectory']}"
    assert "--resume" in argv


def test_every_command_line_is_one_the_cli_accepts() -> None:
    """ExecStartPre validates, ExecStart runs, ExecReload reloads, with options that exist."""
    service = _service()
    parser = build_parser()
    commands = {"ExecStartPre": "validate", "ExecStart": "run", "ExecReload": "reload"}
    for key, command in commands.items():
        argv = _argv(service[key])
        assert command == argv[0], key
        if command == "reload" and "reload" not in parser.format_usage():
            continue  # `orchestrator reload` lands with issue 12 item 4
        parser.parse_args(argv)  # exits 2 (failing the test) on an unknown option


def test_the_watchdog_and_notify_settings_are_those_the_controller_honours() -> None:
    """Type=notify (READY=1, RELOADING=1, WATCHDOG=1 come from the main process), a watchdog."""
    service = _service()
    assert "notify" == service["Type"]
    assert "main" == service["NotifyAccess"]
    assert service["WatchdogSec"].strip()


def test_documentation_points_at_files_that_exist() -> None:
    """Every Documentation= URL is a file of the checkout the install comment names."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    with open(UNIT, encoding="utf-8") as fh:
        parser.read_file(fh)
    urls = parser["Unit"]["Documentation"].split()
    assert urls
    for url in urls:
        assert url.startswith(f"file://{INSTALL}/"), url
        assert os.path.isfile(os.path.join(REPO, url.removeprefix(f"file://{INSTALL}/"))), url
