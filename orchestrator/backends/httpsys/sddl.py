"""The request queue's security descriptor, as SDDL, built from a queue ACL.

Owns: ``build_queue_sddl`` (ACL principals -> ``D:(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;<SID>)...``),
SID validation and canonical form (``validate_sid``), reading the allowed SIDs back out of such a
string (``allowed_sids``, used by the fake to enforce the DACL), and the resolver seam: a
``SidResolver`` turns a user, group or ``DOMAIN\\user`` account into a SID. Windows uses
``windows_sid_resolver`` (``LookupAccountNameW`` through ``_ffi``); Linux tests inject a dict.
Must not touch ctypes itself (``_ffi`` does) and imports nothing above ``orchestrator.model``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from orchestrator.model.desired import Principal, PrincipalKind

#: Always granted: the OS (LocalSystem) and the local Administrators group, as IIS does.
SYSTEM_SID: Final = "S-1-5-18"
ADMINISTRATORS_SID: Final = "S-1-5-32-544"
_ALIASES: Final = {"SY": SYSTEM_SID, "BA": ADMINISTRATORS_SID}
_FIXED_PREFIX: Final = "D:(A;;{rights};;;SY)(A;;{rights};;;BA)"

_SID_SHAPE = re.compile(r"^[Ss]-1-([0-9]+)((?:-[0-9]+)+)$")
_RIGHTS = re.compile(r"^(?:(?:GA|GR|GW|GX)+|0x[0-9A-Fa-f]{1,8})$")
_ACE = re.compile(r"\(([^()]*)\)")
_MAX_SUB_AUTHORITIES = 15

#: Turns a user, group or account principal into a SID string; raises ``PrincipalResolutionError``.
SidResolver = Callable[[Principal], str]


class InvalidSidError(ValueError):
    """A string that is not a Windows SID (``S-1-<authority>-<sub>...``)."""


class PrincipalResolutionError(ValueError):
    """A user, group or account name that could not be turned into a SID."""


def validate_sid(text: str) -> str:
    """Check a SID string and return its canonical form (``S-1-...``, no leading zeros).

    Args:
        text: e.g. ``S-1-5-21-1004336348-1177238915-682003330-512``.

    Returns:
        The canonical SID string.

    Raises:
        InvalidSidError: not revision 1, an identifier authority of 2**48 or more, a sub-authority of
            2**32 or more, or not 1 to 15 sub-authorities.
    """
    match = _SID_SHAPE.match(text)
    if match is None:
        raise InvalidSidError(
            f"{text!r} is not a SID (expected S-1-<authority>-<sub-authority>...)"
        )
    authority = int(match.group(1))
    subs = [int(part) for part in match.group(2)[1:].split("-")]
    if authority >= 1 << 48:
        raise InvalidSidError(f"{text!r}: identifier authority {authority} does not fit in 48 bits")
    if len(subs) > _MAX_SUB_AUTHORITIES:
        raise InvalidSidError(f"{text!r}: {len(subs)} sub-authorities, at most 15 are allowed")
    for sub in subs:
        if sub >= 1 << 32:
            raise InvalidSidError(f"{text!r}: sub-authority {sub} does not fit in 32 bits")
    return "S-1-" + "-".join(str(n) for n in (authority, *subs))


def _sid_order(sid: str) -> tuple[int, ...]:
    return tuple(int(part) for part in sid[4:].split("-"))


def resolve_principal(principal: Principal, resolver: SidResolver | None) -> str:
    """The canonical SID of one ACL entry.

    Raises:
        InvalidSidError: a ``sid`` principal, or a resolver result, that is not a SID.
        PrincipalResolutionError: a name principal without a resolver, or that the resolver refused.
    """
    if principal.kind is PrincipalKind.SID:
        return validate_sid(principal.name)
    if resolver is None:
        raise PrincipalResolutionError(
            f"{principal} needs a SID resolver (names are looked up on Windows)"
        )
    try:
        sid = resolver(principal)
    except KeyError as exc:
        raise PrincipalResolutionError(f"{principal} is not a known account") from exc
    try:
        return validate_sid(sid)
    except InvalidSidError as exc:
        raise InvalidSidError(f"{principal} resolved to {sid!r}, which is not a SID") from exc


def build_queue_sddl(
    acl: Iterable[Principal], resolver: SidResolver | None = None, *, rights: str = "GA"
) -> str:
    """Build the DACL of a request queue: SYSTEM, Administrators, then every principal.

    The result is deterministic: principals are resolved to SIDs, de-duplicated (SYSTEM and
    Administrators are always present and never repeated) and sorted numerically, so the same ACL
    in any order gives the same string and a plan diff stays quiet.

    Args:
        acl: the queue's ACL entries (users, groups, SIDs, ``DOMAIN\\user`` accounts).
        resolver: turns non-SID principals into SIDs; required when there are any.
        rights: the access mask of every ACE: ``GA`` (what the notes recommend until the minimal
            open/receive/send rights are confirmed on Windows), a combination of GR/GW/GX, or hex.

    Returns:
        ``D:(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;<SID>)...``

    Raises:
        ValueError: a malformed ``rights``.
        InvalidSidError, PrincipalResolutionError: as ``resolve_principal``.
    """
    if not _RIGHTS.match(rights):
        raise ValueError(f"rights {rights!r} must be GA, a combination of GR/GW/GX, or 0x<hex>")
    sids = {resolve_principal(p, resolver) for p in acl} - {SYSTEM_SID, ADMINISTRATORS_SID}
    aces = "".join(f"(A;;{rights};;;{sid})" for sid in sorted(sids, key=_sid_order))
    return _FIXED_PREFIX.format(rights=rights) + aces


def allowed_sids(sddl: str) -> frozenset[str]:
    """The SIDs granted access by the allow ACEs of a DACL string (``SY``/``BA`` expanded).

    Raises:
        ValueError: not a ``D:`` string made of ACEs.
    """
    if not sddl.startswith("D:"):
        raise ValueError(f"{sddl!r} has no DACL ('D:')")
    body = sddl[2:].lstrip("PAIR")  # DACL flags: Protected, Auto-inherit(-Req)
    if _ACE.sub("", body):
        raise ValueError(f"{sddl!r} is not a sequence of (ACE) entries")
    granted: set[str] = set()
    for ace in _ACE.findall(body):
        fields = ace.split(";")
        if len(fields) != 6:
            raise ValueError(f"ACE ({ace}) must have 6 fields")
        if fields[0] == "A":
            trustee = fields[5]
            granted.add(_ALIASES.get(trustee) or validate_sid(trustee))
    return frozenset(granted)


def mapping_resolver(names: Mapping[str, str]) -> SidResolver:
    """A resolver over a fixed ``{name: SID}`` table (case-insensitive names), for tests and tools."""
    folded = {name.casefold(): sid for name, sid in names.items()}

    def resolve(principal: Principal) -> str:
        try:
            return folded[principal.name.casefold()]
        except KeyError:
            raise PrincipalResolutionError(f"{principal} is not a known account") from None

    return resolve


def windows_sid_resolver() -> SidResolver:
    """The resolver of a Windows host: ``LookupAccountNameW``, checking the account's kind.

    A ``user`` must name a user account and a ``group`` a group, alias or well-known group, so a
    typo that happens to match the other kind is refused rather than granted.
    """
    from orchestrator.httpapi import _ffi  # lazy: loads advapi32 on first use only

    groups = {_ffi.SidNameUse.GROUP, _ffi.SidNameUse.ALIAS, _ffi.SidNameUse.WELL_KNOWN_GROUP}

    def resolve(principal: Principal) -> str:
        try:
            sid, use = _ffi.lookup_account_sid(_ffi.load(), principal.name)
        except _ffi.HttpApiError as exc:
            raise PrincipalResolutionError(f"{principal}: {exc.name}") from exc
        if principal.kind is PrincipalKind.USER and use is not _ffi.SidNameUse.USER:
            raise PrincipalResolutionError(f"{principal} is a {use.name.lower()}, not a user")
        if principal.kind is PrincipalKind.GROUP and use not in groups:
            raise PrincipalResolutionError(f"{principal} is a {use.name.lower()}, not a group")
        return sid

    return resolve
