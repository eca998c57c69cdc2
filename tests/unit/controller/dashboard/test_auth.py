"""Dashboard auth: the password hash, the token and basic files, and the header checks."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from orchestrator.controller.dashboard.auth import (
    BasicAuth,
    DashboardAuthError,
    TokenAuth,
    hash_password,
    load_auth,
    parse_basic_file,
    parse_token,
    verify_password,
)
from orchestrator.model.desired import DashboardAuth

TOKEN = "s3cret-token-0123456789"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_a_hash_verifies_its_password_only() -> None:
    encoded = hash_password("pa:ss wörd", iterations=1000)
    algorithm, iterations, salt, digest = encoded.split("$")
    assert (algorithm, iterations) == ("pbkdf2_sha256", "1000")
    assert salt
    assert digest
    assert verify_password("pa:ss wörd", encoded)
    assert not verify_password("pa:ss word", encoded)
    assert hash_password("x", iterations=1000) != hash_password("x", iterations=1000)  # salted


def test_a_known_pbkdf2_vector_verifies() -> None:
    """The stored form is the standard library's PBKDF2-HMAC-SHA256 in base64 (Django's form), so
    a hash made without orchestrator (docs/dashboard.md's stdlib one-liner) is accepted."""
    import hashlib

    derived = hashlib.pbkdf2_hmac("sha256", b"hunter2", b"NaCl", 1000)
    encoded = "pbkdf2_sha256$1000$NaCl$" + base64.b64encode(derived).decode()
    assert verify_password("hunter2", encoded)


@pytest.mark.parametrize(
    "encoded",
    ["", "md5$1$a$b", "pbkdf2_sha256$x$a$b", "pbkdf2_sha256$0$a$b", "pbkdf2_sha256$1000$a"],
)
def test_malformed_hashes_never_verify(encoded: str) -> None:
    assert not verify_password("anything", encoded)


def test_the_token_must_be_presented_as_a_bearer_token() -> None:
    auth = TokenAuth(TOKEN)
    assert auth.allows(f"Bearer {TOKEN}")
    assert auth.allows(f"bearer {TOKEN}")
    assert not auth.allows(None)
    assert not auth.allows("")
    assert not auth.allows(f"Bearer {TOKEN}x")
    assert not auth.allows(f"Basic {TOKEN}")
    assert not auth.allows("Bearer ")
    assert auth.challenge.startswith("Bearer ")


def test_basic_auth_checks_user_and_password() -> None:
    auth = BasicAuth({"alice": hash_password("pw1", iterations=1000)})
    assert auth.allows(_basic("alice", "pw1"))
    assert auth.allows(_basic("alice", "pw1"))  # the remembered credential
    assert not auth.allows(_basic("alice", "pw2"))
    assert not auth.allows(_basic("bob", "pw1"))
    assert not auth.allows("Basic not-base64!")
    assert not auth.allows("Basic " + base64.b64encode(b"no colon").decode())
    assert not auth.allows(f"Bearer {TOKEN}")
    assert not auth.allows(None)
    assert auth.challenge.startswith("Basic ")


def test_the_basic_file_is_user_hash_lines() -> None:
    line = "alice:" + hash_password("pw", iterations=1000)
    users = parse_basic_file(f"# operators\n\n{line}\n", "/etc/p")
    assert list(users) == ["alice"]
    with pytest.raises(DashboardAuthError, match=r"^/etc/p:2: not a user:pbkdf2_sha256"):
        parse_basic_file(f"{line}\nbob:plaintext\n", "/etc/p")
    with pytest.raises(DashboardAuthError, match=r"^/etc/p:2: user 'alice' is listed twice"):
        parse_basic_file(f"{line}\n{line}\n", "/etc/p")
    with pytest.raises(DashboardAuthError, match=r"^/etc/p: no users"):
        parse_basic_file("# nobody yet\n", "/etc/p")


def test_the_token_file_holds_one_long_word() -> None:
    assert parse_token(f"{TOKEN}\n", "/t") == TOKEN
    for bad in ("", "short\n", "two words here and more\n"):
        with pytest.raises(DashboardAuthError, match=r"^/t: the token must be one word"):
            parse_token(bad, "/t")


def test_load_auth_reads_the_named_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    loaded = load_auth(DashboardAuth(token_file=str(token)))
    assert loaded is not None
    assert loaded.allows(f"Bearer {TOKEN}")
    passwd = tmp_path / "passwd"
    passwd.write_text("alice:" + hash_password("pw", iterations=1000) + "\n")
    loaded = load_auth(DashboardAuth(basic_file=str(passwd)))
    assert loaded is not None
    assert loaded.allows(_basic("alice", "pw"))
    assert load_auth(None) is None
    missing = tmp_path / "missing"
    with pytest.raises(DashboardAuthError, match=f"^{missing}: cannot read the dashboard's auth"):
        load_auth(DashboardAuth(token_file=str(missing)))
