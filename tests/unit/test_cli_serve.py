"""`medscribe serve`: registered with the other commands, loopback only unless told otherwise, and the
URL it prints (with the one-time token) reaches the login route."""

from __future__ import annotations

import pytest

from medscribe_local.cli import build_parser, main
from medscribe_local.cli_serve import is_loopback, login_url


def test_serve_is_a_command_with_loopback_defaults() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.allow_remote) == ("127.0.0.1", 8765, False)


ALL_INTERFACES = "0.0.0.0"  # noqa: S104 (the host that is refused)


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                                ("localhost", True), (ALL_INTERFACES, False),
                                                ("192.168.1.5", False), ("::", False), ("example.org", False)])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_non_loopback_host_is_refused_without_allow_remote(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", ALL_INTERFACES]) == 2  # refused before any runtime is looked for
    assert "--allow-remote" in capsys.readouterr().err


def test_the_login_url_brackets_ipv6_hosts() -> None:
    assert login_url("127.0.0.1", 8765, "tok") == "http://127.0.0.1:8765/login?token=tok"
    assert login_url("::1", 9000, "tok") == "http://[::1]:9000/login?token=tok"
