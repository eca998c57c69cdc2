"""What the backend may call on Windows and under Wine 8."""

from __future__ import annotations

import sys

import pytest

from orchestrator.httpapi import _ffi
from orchestrator.httpapi.capabilities import capabilities_for, detect_capabilities


def test_windows_supports_everything_but_needs_delegation_exported() -> None:
    """Real Windows: all features; delegation only when HttpDelegateRequestEx is exported."""
    caps = capabilities_for(None)
    assert not caps.is_wine
    assert caps.named_queues
    assert caps.queue_properties
    assert caps.shutdown_queue
    assert caps.urls_per_group is None
    assert not caps.delegation
    assert capabilities_for(None, delegation=True).delegation
    assert {
        "queue_state",
        "verbosity503",
        "queue_length",
        "https",
        "urls_per_group_many",
        "acl",
    } == caps.features()
    assert () == caps.notes()


def test_wine_reports_reduced_capabilities() -> None:
    """Wine 8: no names, no queue properties, one URL per group, no https, no aborting calls."""
    caps = capabilities_for("8.0")
    assert caps.is_wine
    assert (False, False, False, 1, False, False) == (
        caps.named_queues,
        caps.queue_properties,
        caps.query_properties,
        caps.urls_per_group,
        caps.https,
        caps.shutdown_queue,
    )
    assert frozenset() == caps.features()
    assert caps.notes()
    assert "8.0" in caps.notes()[0]


def test_wine_never_claims_delegation() -> None:
    """Wine does not export the delegation functions, whatever the caller says."""
    assert not capabilities_for("8.0", delegation=True).delegation


@pytest.mark.skipif(sys.platform == "win32", reason="checks the non-Windows behaviour")
def test_detection_off_windows_raises() -> None:
    """detect_capabilities needs ntdll; on Linux it says so."""
    with pytest.raises(_ffi.UnsupportedPlatformError):
        detect_capabilities()
