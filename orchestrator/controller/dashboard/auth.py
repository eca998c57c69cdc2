"""Who may see the dashboard: a bearer token, or HTTP basic against hashed passwords.

Owns: ``Authenticator`` (what the server asks: is this ``Authorization`` header good, and what to
say in ``WWW-Authenticate`` when it is not), ``TokenAuth``, ``BasicAuth``, the password hash
(``hash_password``, ``verify_password``: ``pbkdf2_sha256$ITERATIONS$SALT$HASH`` from the standard
library's ``hashlib.pbkdf2_hmac``, the format Django uses), and ``load_auth`` (the manifest's
``session.dashboard.auth`` → an ``Authenticator``, reading its file). Every comparison of a secret
is constant-time (``hmac.compare_digest``). Must not import the server, the daemon or ``cli``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from typing import Protocol

from orchestrator.errors import OrchestratorError
from orchestrator.model.desired import DashboardAuth

ALGORITHM = "pbkdf2_sha256"
#: Iterations ``hash_password`` uses; a hash names its own, so old files keep working.
ITERATIONS = 310_000
#: A token shorter than this is refused: it could be guessed over the network.
MIN_TOKEN_CHARS = 16
#: Verified basic credentials kept (by keyed digest), so that a page polling every second does not
#: pay a key derivation per request; a wrong password is never cached and always pays it.
VERIFIED_MAX = 64
HOW_TO_HASH = (
    "Make a line with: python3 -c 'import getpass; from orchestrator.controller.dashboard.auth "
    'import hash_password; print("USER:" + hash_password(getpass.getpass()))\' >> FILE '
    "(docs/dashboard.md, Configuration)."
)


class DashboardAuthError(OrchestratorError):
    """An auth file cannot be used (missing, unreadable, malformed)."""


class Authenticator(Protocol):
    """Checks a request's ``Authorization`` header."""

    #: The ``WWW-Authenticate`` value of a 401.
    challenge: str

    def allows(self, header: str | None) -> bool:
        """Whether ``header`` (the request's ``Authorization``, ``None`` when absent) is good."""
        ...


class TokenAuth:
    """``Authorization: Bearer TOKEN`` with the token of a file."""

    challenge = 'Bearer realm="orchestrator"'

    def __init__(self, token: str) -> None:
        self._token = token.encode("utf-8")

    def allows(self, header: str | None) -> bool:
        scheme, _, given = (header or "").partition(" ")
        # Compared even when the scheme is wrong, so that the answer takes the same time.
        same = hmac.compare_digest(self._token, given.strip().encode("utf-8", "replace"))
        return scheme.lower() == "bearer" and same


class BasicAuth:
    """``Authorization: Basic base64(user:password)`` against ``user:HASH`` lines."""

    challenge = 'Basic realm="orchestrator", charset="UTF-8"'

    def __init__(self, users: dict[str, str]) -> None:
        self._users = dict(users)
        # An unknown user is checked against this, so that it costs what a known one does.
        self._decoy = hash_password(secrets.token_hex(16))
        self._key = secrets.token_bytes(32)
        self._verified: dict[bytes, None] = {}
        self._lock = threading.Lock()

    def allows(self, header: str | None) -> bool:
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, colon, password = decoded.partition(":")
        if not colon:
            return False
        digest = hmac.digest(self._key, decoded.encode("utf-8"), "sha256")
        with self._lock:
            if digest in self._verified:
                return True
        known = user in self._users
        ok = verify_password(password, self._users.get(user, self._decoy)) and known
        if ok:
            with self._lock:
                if len(self._verified) >= VERIFIED_MAX:
                    self._verified.pop(next(iter(self._verified)))
                self._verified[digest] = None
        return ok


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: str | None = None) -> str:
    """``pbkdf2_sha256$ITERATIONS$SALT$HASH`` (HASH in base64), a line's right-hand side."""
    salt = salt or secrets.token_urlsafe(16)
    derived = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode(), iterations)
    return f"{ALGORITHM}${iterations}${salt}${base64.b64encode(derived).decode('ascii')}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded`` (``hash_password``'s form); constant-time."""
    try:
        algorithm, iterations, salt, expected = encoded.split("$", 3)
        rounds = int(iterations)
    except ValueError:
        return False
    if algorithm != ALGORITHM or not 1 <= rounds <= 10_000_000:
        return False
    derived = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode(), rounds)
    given = base64.b64encode(derived).decode("ascii").encode()
    return hmac.compare_digest(given, expected.encode("ascii", "replace"))


def parse_basic_file(text: str, path: str) -> dict[str, str]:
    """``user:HASH`` lines (blank lines and ``#`` comments skipped) → users.

    Raises:
        DashboardAuthError: a line is not ``user:pbkdf2_sha256$...``, or a user is listed twice
            (the error names the file and line).
    """
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, _, encoded = line.partition(":")
        fields = encoded.split("$")
        if not user or len(fields) != 4 or fields[0] != ALGORITHM or not fields[1].isdigit():
            raise DashboardAuthError(
                f"{path}:{number}: not a user:{ALGORITHM}$ITERATIONS$SALT$HASH line",
                HOW_TO_HASH,
            )
        if user in users:
            raise DashboardAuthError(f"{path}:{number}: user {user!r} is listed twice")
        users[user] = encoded
    if not users:
        raise DashboardAuthError(
            f"{path}: no users",
            HOW_TO_HASH,
        )
    return users


def parse_token(text: str, path: str) -> str:
    """The token: the file's first line, stripped.

    Raises:
        DashboardAuthError: it is shorter than ``MIN_TOKEN_CHARS`` or has spaces in it.
    """
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise DashboardAuthError(
            f"{path}: the token must be one word of at least {MIN_TOKEN_CHARS} characters",
            "Make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > FILE",
        )
    return token


def load_auth(auth: DashboardAuth | None) -> Authenticator | None:
    """The authenticator ``session.dashboard.auth`` asks for (``None``: no auth), its file read.

    Raises:
        DashboardAuthError: the file cannot be read or is malformed (the error names it).
    """
    if auth is None:
        return None
    path = auth.token_file or auth.basic_file
    if path is None:
        raise DashboardAuthError("session.dashboard.auth names neither tokenFile nor basicFile")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise DashboardAuthError(
            f"{path}: cannot read the dashboard's auth file ({exc})",
            "Create it, or fix session.dashboard.auth; the controller's user must be able to "
            "read it.",
        ) from None
    if auth.token_file:
        return TokenAuth(parse_token(text, path))
    return BasicAuth(parse_basic_file(text, path))
