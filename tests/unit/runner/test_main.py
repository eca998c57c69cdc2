"""``orchestrator worker`` argument handling: usage errors return 2 without touching sockets or apps."""

from __future__ import annotations

import pytest

from orchestrator.runner.main import EXIT_OK, EXIT_USAGE, build_parser, main


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--threads", "0", "a:app"],
        ["--threads", "many", "a:app"],
        ["--graceful-timeout", "-1", "a:app"],
        ["--graceful-timeout", "nan", "a:app"],
        ["--keepalive-timeout", "soon", "a:app"],
        ["--bind", "nowhere", "a:app"],
        ["--bind", "unix:", "a:app"],
        ["--no-such-option", "a:app"],
    ],
)
def test_usage_errors_return_2_with_a_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse's exit becomes a return value: the caller (the orchestrator CLI) owns the exit."""
    assert EXIT_USAGE == main(argv)
    assert "orchestrator worker: error:" in capsys.readouterr().err


def test_help_returns_0_and_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """``--help`` lists the boot-error code the controller relies on."""
    assert EXIT_OK == main(["--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: orchestrator worker")
    assert "3  cannot boot" in out


def test_defaults_match_the_documented_ones() -> None:
    """8 threads, 30 s grace, 75 s keep-alive, no access log, serve the cwd."""
    args = build_parser().parse_args(["hello:app"])
    assert (8, 30.0, 75.0, False, None, []) == (
        args.threads,
        args.graceful_timeout,
        args.keepalive_timeout,
        args.access_log,
        args.app_dir,
        args.bind,
    )
