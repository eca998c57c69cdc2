"""Building the request queue DACL (SDDL) from a queue ACL, with an injected SID resolver."""

from __future__ import annotations

import pytest

from orchestrator.backends.httpsys import sddl
from orchestrator.model.desired import Principal, PrincipalKind

WEB = "S-1-5-21-1004336348-1177238915-682003330-1001"
OPS = "S-1-5-21-1004336348-1177238915-682003330-513"
POOL = "S-1-5-82-3006700770-424185619-1745488364-794895919-4004696415"
RESOLVER = sddl.mapping_resolver({"web": WEB, "ops": OPS, r"IIS APPPOOL\api": POOL})


def _p(kind: PrincipalKind, name: str) -> Principal:
    return Principal(kind=kind, name=name)


def test_empty_acl_grants_system_and_administrators_only() -> None:
    """SYSTEM and Administrators are always present, as IIS pools have them."""
    assert "D:(A;;GA;;;SY)(A;;GA;;;BA)" == sddl.build_queue_sddl([])


def test_each_principal_kind_becomes_an_allow_ace() -> None:
    """user, group, account and sid principals all end up as (A;;GA;;;SID)."""
    acl = [
        _p(PrincipalKind.USER, "web"),
        _p(PrincipalKind.GROUP, "ops"),
        _p(PrincipalKind.ACCOUNT, r"IIS APPPOOL\api"),
        _p(PrincipalKind.SID, "S-1-5-20"),
    ]
    expected = (
        "D:(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;S-1-5-20)"
        f"(A;;GA;;;{OPS})(A;;GA;;;{WEB})(A;;GA;;;{POOL})"
    )
    assert expected == sddl.build_queue_sddl(acl, RESOLVER)


def test_order_of_the_acl_does_not_change_the_string() -> None:
    """The same ACL in any order yields the same SDDL (no spurious plan diffs)."""
    acl = [_p(PrincipalKind.USER, "web"), _p(PrincipalKind.GROUP, "ops")]
    assert sddl.build_queue_sddl(acl, RESOLVER) == sddl.build_queue_sddl(acl[::-1], RESOLVER)


def test_sids_sort_numerically_not_lexically() -> None:
    """S-1-5-9 comes before S-1-5-10."""
    acl = [_p(PrincipalKind.SID, "S-1-5-10"), _p(PrincipalKind.SID, "S-1-5-9")]
    assert sddl.build_queue_sddl(acl).endswith("(A;;GA;;;S-1-5-9)(A;;GA;;;S-1-5-10)")


def test_duplicates_and_builtin_sids_are_not_repeated() -> None:
    """A SID named twice, or SYSTEM/Administrators named explicitly, appears once."""
    acl = [
        _p(PrincipalKind.USER, "web"),
        _p(PrincipalKind.SID, WEB),
        _p(PrincipalKind.SID, sddl.SYSTEM_SID),
        _p(PrincipalKind.SID, sddl.ADMINISTRATORS_SID),
    ]
    assert f"D:(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;{WEB})" == sddl.build_queue_sddl(acl, RESOLVER)


def test_rights_can_be_narrowed() -> None:
    """Rights other than GA are written into every ACE."""
    text = sddl.build_queue_sddl([_p(PrincipalKind.SID, "S-1-5-20")], rights="GRGW")
    assert "D:(A;;GRGW;;;SY)(A;;GRGW;;;BA)(A;;GRGW;;;S-1-5-20)" == text


@pytest.mark.parametrize("rights", ["", "ga", "GA;", "FA", "0x"])
def test_malformed_rights_are_refused(rights: str) -> None:
    """Only GA/GR/GW/GX combinations or a hex mask are accepted."""
    with pytest.raises(ValueError, match="rights"):
        sddl.build_queue_sddl([], rights=rights)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("S-1-5-18", "S-1-5-18"),
        ("s-1-5-32-544", "S-1-5-32-544"),
        ("S-1-5-021-7", "S-1-5-21-7"),
        ("S-1-281474976710655-1", "S-1-281474976710655-1"),
        ("S-1-5-4294967295", "S-1-5-4294967295"),
    ],
)
def test_valid_sids_are_canonicalised(text: str, canonical: str) -> None:
    """Upper-case S, no leading zeros."""
    assert canonical == sddl.validate_sid(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "S-1",
        "S-1-5",
        "S-2-5-18",
        "S-1-5-18-",
        "S-1-x-18",
        "SY",
        "S-1-281474976710656-1",
        "S-1-5-4294967296",
        "S-1-5" + "-1" * 16,
        "S-1-5-18)(A;;GA;;;WD",
    ],
)
def test_invalid_sids_are_refused(text: str) -> None:
    """Revision 1, 48-bit authority, 32-bit sub-authorities, 1..15 of them; nothing else."""
    with pytest.raises(sddl.InvalidSidError):
        sddl.validate_sid(text)


def test_sid_principal_with_a_bad_sid_is_refused() -> None:
    """A sid principal is validated, so SDDL injection through it is impossible."""
    with pytest.raises(sddl.InvalidSidError):
        sddl.build_queue_sddl([_p(PrincipalKind.SID, "S-1-5-18)(A;;GA;;;WD)")])


def test_name_principals_need_a_resolver() -> None:
    """Without a resolver only sid principals can be used (names are looked up on Windows)."""
    with pytest.raises(sddl.PrincipalResolutionError, match="resolver"):
        sddl.build_queue_sddl([_p(PrincipalKind.USER, "web")])


def test_unknown_name_is_a_resolution_error() -> None:
    """A name the resolver does not know is reported as such."""
    with pytest.raises(sddl.PrincipalResolutionError, match="user:nobody"):
        sddl.build_queue_sddl([_p(PrincipalKind.USER, "nobody")], RESOLVER)


def test_resolver_returning_a_non_sid_is_refused() -> None:
    """The resolver's answer is validated too."""
    with pytest.raises(sddl.InvalidSidError, match="user:web"):
        sddl.build_queue_sddl([_p(PrincipalKind.USER, "web")], lambda p: "not-a-sid")


def test_a_plain_callable_raising_key_error_counts_as_unknown() -> None:
    """Resolvers may be a dict lookup: KeyError means unknown account."""
    table: dict[str, str] = {}
    with pytest.raises(sddl.PrincipalResolutionError):
        sddl.build_queue_sddl([_p(PrincipalKind.GROUP, "g")], lambda p: table[p.name])


def test_allowed_sids_reads_back_what_build_wrote() -> None:
    """allowed_sids expands SY/BA and returns every allow ACE's trustee."""
    text = sddl.build_queue_sddl([_p(PrincipalKind.USER, "web")], RESOLVER)
    assert {sddl.SYSTEM_SID, sddl.ADMINISTRATORS_SID, WEB} == sddl.allowed_sids(text)


@pytest.mark.parametrize("text", ["O:SY", "D:garbage", "D:(A;;GA;;SY)", "D:(A;;GA;;;bogus)"])
def test_allowed_sids_refuses_malformed_dacls(text: str) -> None:
    """Only a D: string of well-formed ACEs is read."""
    with pytest.raises(ValueError):
        sddl.allowed_sids(text)
