"""``plan --format markdown``: golden comments for every golden plan, and escaping of manifest text."""

from __future__ import annotations

import os
import re
from types import MappingProxyType

import pytest

from orchestrator.model import LiveState
from orchestrator.plan import make_plan
from orchestrator.plan.markdown import escape, render_markdown
from orchestrator.plan.render import errored_document, plan_document
from tests.support.states import desired, pool, queue, session
from tests.unit.plan.test_golden import CASES, DATA, _check, _live, _state


@pytest.mark.parametrize("case", CASES)
def test_plan_markdown_matches_golden(case: str) -> None:
    """The pull-request comment of each golden plan is stable (NNN.plan.md)."""
    plan = make_plan(_state(os.path.join(DATA, case + ".desired.yaml")), _live(case))
    _check(os.path.join(DATA, case + ".plan.md"), render_markdown(plan_document(plan)))


def test_counts_come_first_then_one_collapsed_block_per_change_with_its_reason() -> None:
    """The heading holds the counts; each change is a <details> block naming its reason."""
    plan = make_plan(
        _state(os.path.join(DATA, "003-worker-command-restarts.desired.yaml")),
        _live("003-worker-command-restarts"),
    )
    text = render_markdown(plan_document(plan))
    first = text.splitlines()[0]
    assert first.startswith("### orchestrator plan: **0** to add")
    assert len(plan.steps) == text.count("<details><summary>")
    assert text.count("<details>") == text.count("</details>")
    assert "restart&#95;because&#95;spec&#95;changed" in text


def test_manifest_strings_cannot_break_the_table_or_inject_html() -> None:
    """A command with ``|``, backticks and ``<script>`` shows as written, inside one table row."""
    hostile = ("sh", "-c", "echo `id` | tee </x> <script>alert(1)</script> *bold* [a](b)")
    before = desired(session(), queue("api"), pool("api", "api", "serve"))
    after = desired(session(), queue("api"), pool("api", "api", *hostile))
    live = LiveState(
        resources=before.resources,
        applied=MappingProxyType(dict(before.resources)),
        backend="linux",
    )
    text = render_markdown(plan_document(make_plan(after, live)))
    assert "<script>" not in text
    assert "`" not in text
    rows = [line for line in text.splitlines() if line.startswith("| <code>command")]
    assert 1 == len(rows)
    assert 5 == rows[0].count("|")  # four cells: no pipe from the value leaked into the row
    assert "&#124; tee &#60;/x&#62;" in rows[0]


def test_escape_turns_every_active_character_into_an_entity() -> None:
    """HTML and markdown metacharacters become numeric entities; newlines become <br>."""
    assert "a&#60;b&#62;&#38;&#124;&#96;&#42;&#95;&#91;&#93;<br>c" == escape("a<b>&|`*_[]\nc")
    assert not re.search(r"[<>&|`*_\[\]]", escape("<>&|`*_[]").replace("&#", ""))


def test_an_errored_document_lists_every_diagnostic_with_its_place() -> None:
    """An invalid manifest's comment says so and lists each diagnostic's file:line:column."""
    doc = errored_document(
        [
            {
                "file": "site.yaml",
                "line": 3,
                "column": 5,
                "path": "queues.a|b",
                "severity": "error",
                "message": "unknown <field>",
                "hint": None,
            }
        ]
    )
    text = render_markdown(doc)
    assert text.startswith("### orchestrator plan: the manifest is invalid (1 errors)")
    assert "<code>site.yaml:3:5</code>" in text
    assert "unknown &#60;field&#62;" in text
    assert "queues.a&#124;b" in text
