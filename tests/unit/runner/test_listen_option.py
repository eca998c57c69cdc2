"""``--listen`` parsing: a TCP ``HOST:PORT`` only, exclusive with ``--bind``; no sockets, no apps."""

from __future__ import annotations

import pytest

from orchestrator.runner.listeners import BindAddress, parse_bind, parse_listen
from orchestrator.runner.main import EXIT_USAGE, build_parser, main


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:8080", BindAddress(host="0.0.0.0", port=8080)),
        ("127.0.0.1:0", BindAddress(host="127.0.0.1", port=0)),
        ("[::]:8080", BindAddress(host="::", port=8080)),
        ("localhost:65535", BindAddress(host="localhost", port=65535)),
    ],
)
def test_listen_addresses_parse_and_print_back(text: str, expected: BindAddress) -> None:
    """IPv4, bracketed IPv6 and host names, as ``--bind`` spells its TCP form."""
    assert expected == parse_listen(text)
    assert text == str(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope", "'nope' is not HOST:PORT"),
        ("8080", "'8080' is not HOST:PORT"),
        ("host:http", "'host:http' is not HOST:PORT"),
        ("host:+1", "'host:+1' is not HOST:PORT"),
        ("host:99999", "port 99999 is out of range (0-65535)"),
        (":8080", "the host is missing"),
        ("[]:8080", "the host is missing"),
        ("::1:8080", "put an IPv6 address in brackets"),
        ("unix:/run/q.sock", "use --bind for unix:PATH"),
    ],
)
def test_bad_listen_addresses_say_what_is_wrong(text: str, message: str) -> None:
    """Each refusal names the value and the fix."""
    with pytest.raises(ValueError, match=r".") as caught:
        parse_listen(text)
    assert message in str(caught.value)


def test_bind_reports_an_out_of_range_port_too() -> None:
    """The shared HOST:PORT parser gives ``--bind`` the same port message."""
    with pytest.raises(ValueError, match=r"port 70000 is out of range \(0-65535\)"):
        parse_bind("host:70000")


def test_listen_defaults_to_unset_and_parses_into_an_address() -> None:
    """Without --listen the runner serves inherited sockets as before."""
    assert None is build_parser().parse_args(["hello:app"]).listen
    args = build_parser().parse_args(["--listen", "0.0.0.0:8080", "hello:app"])
    assert BindAddress(host="0.0.0.0", port=8080) == args.listen


@pytest.mark.parametrize(
    "argv",
    [
        ["--listen", "nope", "a:app"],
        ["--listen", "0.0.0.0:8080", "--bind", "127.0.0.1:0", "a:app"],
        ["--bind", "unix:/x.sock", "--listen", "0.0.0.0:8080", "a:app"],
    ],
)
def test_listen_usage_errors_are_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 with a single line that still points to --help."""
    assert EXIT_USAGE == main(argv)
    err = capsys.readouterr().err
    assert 1 == len(err.splitlines()), err
    assert err.startswith("orchestrator worker: error: argument --")
    assert err.endswith("(see orchestrator worker --help)\n")
