"""http.sys URL prefixes: parsing, canonical form and host categories.

Owns: ``UrlPrefix``, ``HostKind``, ``parse_prefix`` and ``UrlPrefixError``. The grammar is the one of the
Windows "UrlPrefix Strings" page: ``scheme://host:port/relativeURI/`` with a lowercase ``http`` or
``https`` scheme, a mandatory port, a host that is ``+`` (strong wildcard), a name, an IP literal or ``*``
(weak wildcard), and a path that begins and ends with ``/``. Host and path are case-insensitive, so the
canonical form lowercases both; two prefixes are the same registration exactly when their canonical
forms are equal.
Pure: standard library only.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass

_HOSTNAME_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_UNRESERVED = re.compile(r"%([0-9a-fA-F]{2})")
_PATH_CHARS = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$")


class UrlPrefixError(ValueError):
    """A URL prefix that breaks the http.sys grammar; the message says what to write instead."""


class HostKind(enum.IntEnum):
    """Host categories in http.sys routing precedence (lower value wins)."""

    STRONG = 0  # "+"
    EXPLICIT = 1  # a host name
    IP = 2  # an IP literal
    WEAK = 3  # "*"


@dataclass(frozen=True, slots=True, order=True)
class UrlPrefix:
    """A parsed, canonical URL prefix."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def host_kind(self) -> HostKind:
        """The routing bucket this prefix sits in."""
        if self.host == "+":
            return HostKind.STRONG
        if self.host == "*":
            return HostKind.WEAK
        if _is_ip(self.host):
            return HostKind.IP
        return HostKind.EXPLICIT

    @property
    def address(self) -> str:
        """``host:port`` as written in a TLS binding."""
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path}"


def _is_ip(host: str) -> bool:
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _canonical_host(host: str) -> str:
    if host in ("+", "*"):
        return host
    if host.startswith("["):
        if not host.endswith("]"):
            raise UrlPrefixError(f"IPv6 host {host!r} is missing its closing ']'")
        try:
            addr = ipaddress.IPv6Address(host[1:-1])
        except ValueError as exc:
            raise UrlPrefixError(f"{host!r} is not an IPv6 address") from exc
        return f"[{addr.compressed}]"
    lowered = host.lower()
    if re.fullmatch(r"[0-9.]+", lowered):
        try:
            return str(ipaddress.IPv4Address(lowered))
        except ValueError as exc:
            raise UrlPrefixError(f"{host!r} is not an IPv4 address") from exc
    labels = lowered.rstrip(".").split(".")
    if not lowered or not all(_HOSTNAME_LABEL.match(label) for label in labels):
        raise UrlPrefixError(
            f"host {host!r} is not '+', '*', an IP address or a host name "
            "(letters, digits, '-' and '.')"
        )
    return ".".join(labels)


def _canonical_path(path: str) -> str:
    if not path:
        return "/"
    if not path.startswith("/"):
        raise UrlPrefixError(f"path {path!r} must begin with '/'")
    if not path.endswith("/"):
        raise UrlPrefixError(f"path {path!r} must end with '/' (write {path + '/'!r})")
    if "\\" in path:
        raise UrlPrefixError("path must not contain a backslash")
    if not _PATH_CHARS.match(path):
        raise UrlPrefixError(f"path {path!r} contains characters that must be percent-encoded")

    def decode(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        if (char.isalnum() and char.isascii()) or char in "-._~":
            return char
        if char in "/\\":
            raise UrlPrefixError("path must not contain an encoded '/' or '\\' (%2F, %5C)")
        return "%" + match.group(1).upper()

    if re.search(r"%(?![0-9a-fA-F]{2})", path):
        raise UrlPrefixError("path has a '%' that does not start a %XX escape")
    decoded = _UNRESERVED.sub(decode, path)
    segments = decoded[1:-1].split("/") if decoded != "/" else []
    for segment in segments:
        if segment == "":
            raise UrlPrefixError("path must not contain an empty segment ('//')")
        if segment in (".", ".."):
            raise UrlPrefixError("path must not contain '.' or '..' segments")
    return decoded.lower()


def parse_prefix(text: str) -> UrlPrefix:
    """Parse and canonicalise one http.sys URL prefix.

    Args:
        text: the prefix as written in the manifest, e.g. ``http://+:8080/api/``.

    Returns:
        The canonical prefix (host and path lowercased, unreserved escapes decoded).

    Raises:
        UrlPrefixError: the text breaks the grammar; the message says how.
    """
    if text != text.strip() or any(c.isspace() for c in text):
        raise UrlPrefixError("URL prefix must not contain whitespace")
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise UrlPrefixError("URL prefix must look like http://HOST:PORT/PATH/")
    if scheme not in ("http", "https"):
        if scheme.lower() in ("http", "https"):
            raise UrlPrefixError(f"scheme must be lowercase ({scheme.lower()!r}, not {scheme!r})")
        raise UrlPrefixError(f"scheme must be 'http' or 'https', not {scheme!r}")
    if "?" in rest or "#" in rest:
        raise UrlPrefixError("URL prefix must not have a query ('?') or fragment ('#')")
    if "@" in rest.split("/", 1)[0]:
        raise UrlPrefixError("URL prefix must not contain user information ('user@')")
    slash = rest.find("/")
    shown_path = (rest[slash:] if slash >= 0 else "/").rstrip("/") + "/"
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise UrlPrefixError(f"IPv6 host in {authority!r} is missing its closing ']'")
        host, port_text = authority[: close + 1], authority[close + 1 :]
        if not port_text.startswith(":"):
            default = 443 if scheme == "https" else 80
            raise UrlPrefixError(
                f"port is mandatory (write {scheme}://{host}:{default}{shown_path})"
            )
        port_text = port_text[1:]
    else:
        host, colon, port_text = authority.rpartition(":")
        if not colon:
            raise UrlPrefixError(
                f"port is mandatory (write {scheme}://{authority}:"
                f"{443 if scheme == 'https' else 80}{shown_path})"
            )
    if not host:
        raise UrlPrefixError("host is missing (use '+' for every host name)")
    # Port 0 asks the Linux backend for a free port (tests, ad-hoc runs); http.sys refuses it.
    if not re.fullmatch(r"0|[1-9][0-9]{0,4}", port_text) or int(port_text) > 65535:
        raise UrlPrefixError(
            f"port {port_text!r} must be a number from 0 to 65535 without leading zeros"
        )
    return UrlPrefix(scheme, _canonical_host(host), int(port_text), _canonical_path(path))
