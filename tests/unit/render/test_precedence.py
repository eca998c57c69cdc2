"""Precedence is computed: http.sys host buckets against the Gateway's host-then-path ranking."""

from __future__ import annotations

import pytest

from orchestrator.model.urlprefix import parse_prefix
from orchestrator.render.precedence import Divergence, RoutedPrefix, divergences


def _routes(*pairs: tuple[str, str]) -> list[RoutedPrefix]:
    return [RoutedPrefix(group, parse_prefix(url)) for group, url in pairs]


def _summary(found: list[Divergence]) -> list[tuple[str, str, str]]:
    return [(str(d.request), d.httpsys, d.gateway) for d in found]


# Each case: the groups' prefixes, and every request the two models route differently
# (request, http.sys outcome, Gateway outcome); an empty list means silence.
CASES = {
    "strong wildcard beats an explicit host under http.sys only": (
        [("api", "http://+:80/api/"), ("site", "http://www.example.com:80/")],
        [
            (
                "GET http://www.example.com:80/api/",
                '"api" (http://+:80/api/)',
                '"site" (http://www.example.com:80/)',
            )
        ],
    ),
    "a strong wildcard root beats an explicit host under http.sys only": (
        [("any", "http://+:80/"), ("site", "http://www.example.com:80/app/")],
        [
            (
                "GET http://www.example.com:80/",
                '"any" (http://+:80/)',
                "404 (no route matches the path)",
            ),
            (
                "GET http://www.example.com:80/app/",
                '"any" (http://+:80/)',
                '"site" (http://www.example.com:80/app/)',
            ),
        ],
    ),
    "an IP-bound prefix loses to a strong wildcard's shorter path under http.sys only": (
        [("local", "http://127.0.0.1:80/api/"), ("any", "http://+:80/")],
        [
            (
                "GET http://127.0.0.1:80/api/",
                '"any" (http://+:80/)',
                '"local" (http://127.0.0.1:80/api/)',
            )
        ],
    ),
    "an IP-bound prefix with the longer path agrees with a weak wildcard": (
        [("local", "http://127.0.0.1:80/api/"), ("rest", "http://*:80/")],
        [],
    ),
    "an IP-bound shorter path beats a weak wildcard's longer path under http.sys only": (
        [("local", "http://127.0.0.1:80/"), ("rest", "http://*:80/api/")],
        [
            (
                "GET http://127.0.0.1:80/api/",
                '"local" (http://127.0.0.1:80/)',
                '"rest" (http://*:80/api/)',
            )
        ],
    ),
    "a weak wildcard with the longer path loses to a strong one under http.sys only": (
        [("strong", "http://+:80/"), ("weak", "http://*:80/api/")],
        [
            (
                "GET http://example.com:80/api/",
                '"strong" (http://+:80/)',
                '"weak" (http://*:80/api/)',
            )
        ],
    ),
    "a weak wildcard with the shorter path agrees with a strong one": (
        [("strong", "http://+:80/api/"), ("weak", "http://*:80/")],
        [],
    ),
    "nested prefixes in different buckets: the inner strong one wins under http.sys only": (
        [("outer", "http://www.example.com:80/api/"), ("inner", "http://+:80/api/v2/")],
        [
            (
                "GET http://www.example.com:80/api/v2/",
                '"inner" (http://+:80/api/v2/)',
                '"outer" (http://www.example.com:80/api/)',
            )
        ],
    ),
    "nested prefixes in one bucket agree": (
        [("outer", "http://+:80/api/"), ("inner", "http://+:80/api/v2/")],
        [],
    ),
    "the same path in two buckets is a tie on the Gateway": (
        [("strong", "http://+:80/x/"), ("weak", "http://*:80/x/")],
        [
            (
                "GET http://example.com:80/x/",
                '"strong" (http://+:80/x/)',
                'whichever of "strong", "weak" was created first (equal prefixes tie; then by name)',
            )
        ],
    ),
    "different ports never overlap": (
        [("a", "http://+:80/"), ("b", "http://www.example.com:8080/")],
        [],
    ),
    "two explicit hosts never overlap": (
        [("a", "http://a.example.com:80/"), ("b", "http://b.example.com:80/x/")],
        [],
    ),
    "the quickstart's two IP-bound groups agree": (
        [("hello", "http://127.0.0.1:8080/hello/"), ("notes", "http://127.0.0.1:8080/notes/")],
        [],
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_precedence_table(case: str) -> None:
    """Each pair of overlapping prefixes gets its warning, or its silence."""
    routes, expected = CASES[case]
    assert expected == _summary(divergences(_routes(*routes)))


def test_a_divergence_names_both_groups_the_request_and_both_outcomes() -> None:
    """The warning text carries everything an operator needs to see the difference."""
    (found,) = divergences(_routes(("api", "http://+:80/api/"), ("site", "http://a.test:80/")))
    assert found.message() == (
        'URL groups "api" (http://+:80/api/) and "site" (http://a.test:80/) overlap, and the '
        "Gateway routes differently: GET http://a.test:80/api/ goes to "
        '"api" (http://+:80/api/) under http.sys but to "site" (http://a.test:80/) on the Gateway'
    )


def test_prefixes_of_one_group_are_never_compared() -> None:
    """Which prefix of a group wins does not matter: the request reaches the same group."""
    assert [] == divergences(_routes(("one", "http://+:80/"), ("one", "http://*:80/api/")))
