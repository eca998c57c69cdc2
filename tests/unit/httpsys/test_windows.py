"""Behaviour only real Windows can show (notes section 5.3); skipped elsewhere (marker windows).

These use RealBinding against the machine's http.sys. They are the start of the manual checklist,
never claimed as tested on Linux or under Wine.
"""

from __future__ import annotations

import uuid

import pytest

from orchestrator.backends.httpsys.sddl import build_queue_sddl, windows_sid_resolver
from orchestrator.httpapi._ffi import ErrorCode, HttpApiError
from orchestrator.httpapi.binding import RealBinding
from orchestrator.httpapi.capabilities import detect_capabilities
from orchestrator.httpapi.handles import ApiInit
from orchestrator.httpapi.queue_open import (
    QueueMode,
    QueueNotFoundError,
    open_request_queue,
)
from orchestrator.model.desired import Principal, PrincipalKind

pytestmark = pytest.mark.windows


def _name() -> str:
    return f"orchestrator-test-{uuid.uuid4().hex[:12]}"


def test_real_windows_is_not_wine() -> None:
    """detect_capabilities reports full capabilities on Windows."""
    caps = detect_capabilities()
    assert not caps.is_wine
    assert caps.named_queues


def test_duplicate_queue_name_is_183_and_create_or_attach_attaches() -> None:
    """Windows: Create on a taken name is 183; CreateOrAttach attaches with created=False."""
    binding = RealBinding()
    name = _name()
    with ApiInit(binding), open_request_queue(binding, name) as first:
        with pytest.raises(HttpApiError) as info:
            binding.create_request_queue(name)
        assert ErrorCode.ERROR_ALREADY_EXISTS == info.value.code
        with open_request_queue(binding, name, QueueMode.CREATE_OR_ATTACH) as second:
            assert first.created
            assert not second.created


def test_attach_to_a_missing_name_is_queue_not_found() -> None:
    """Windows: OPEN_EXISTING on a missing name is 2."""
    binding = RealBinding()
    with ApiInit(binding), pytest.raises(QueueNotFoundError):
        open_request_queue(binding, _name(), QueueMode.ATTACH)


def test_queue_dacl_from_resolved_accounts_is_accepted() -> None:
    """LookupAccountNameW resolves built-in accounts and the SDDL converts and creates a queue."""
    resolver = windows_sid_resolver()
    acl = [Principal(kind=PrincipalKind.ACCOUNT, name="NT AUTHORITY\\NETWORK SERVICE")]
    text = build_queue_sddl(acl, resolver)
    assert text.endswith("(A;;GA;;;S-1-5-20)")
    binding = RealBinding()
    with ApiInit(binding), open_request_queue(binding, _name(), security_descriptor=text) as queue:
        assert queue.created
