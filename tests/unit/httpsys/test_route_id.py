"""The route id carried in every URL's UrlContext (layout version 1): encoding and round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.backends.httpsys.routes import ROUTE_ID_VERSION, decode_route_id, route_id

GROUPS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=63)
URLS = st.builds(
    lambda host, port, path: f"http://{host}:{port}/{path}",
    st.sampled_from(["+", "*", "localhost", "127.0.0.1"]),
    st.integers(1, 65535),
    st.sampled_from(["", "api/", "app/deep/", "x/y/z/"]),
)


def test_the_layout_is_version_group_hash_url_hash() -> None:
    """Top byte 1, then CRC-32 of the group name, then the low 24 bits of the URL's CRC-32."""
    import zlib

    value = route_id("api", "http://+:8080/api/")
    assert 1 == value >> 56
    assert zlib.crc32(b"api") == (value >> 24) & 0xFFFFFFFF
    assert zlib.crc32(b"http://+:8080/api/") & 0xFFFFFF == value & 0xFFFFFF
    assert value < 1 << 64


@given(GROUPS, URLS)
def test_a_route_id_decodes_to_the_route_it_was_made_for(group: str, url: str) -> None:
    """decode(route_id(g, u)) is version 1 and matches (g, u)."""
    decoded = decode_route_id(route_id(group, url))
    assert ROUTE_ID_VERSION == decoded.version
    assert decoded.matches(group, url)


def test_route_ids_are_stable_and_distinguish_routes() -> None:
    """Same inputs, same id (no table, no order); another URL or group, another id."""
    a = route_id("api", "http://+:8080/api/")
    assert a == route_id("api", "http://+:8080/api/")
    assert a != route_id("api", "http://+:8080/v2/")
    assert a != route_id("web", "http://+:8080/api/")
    assert not decode_route_id(a).matches("web", "http://+:8080/api/")


@pytest.mark.parametrize("context", [0, 7, 2 << 56, 1 << 64, -1])
def test_contexts_that_are_not_version_1_route_ids_are_refused(context: int) -> None:
    """0 (no route id), an unknown version or an out-of-range value raise ValueError."""
    with pytest.raises(ValueError, match="UrlContext"):
        decode_route_id(context)
