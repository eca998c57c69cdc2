"""All errors at once: schema errors drop only their object, and the semantic checks run on the rest
without reporting what only follows from a dropped object (issue 13 item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ManifestError
from orchestrator.manifest import load_manifest


def _errors(path: Path) -> list[tuple[int, int, str]]:
    """(line, column, summary) of every diagnostic, in the order they are reported."""
    with pytest.raises(ManifestError) as info:
        load_manifest(str(path))
    return [
        (d.location.line, d.location.column, d.summary)
        for d in info.value.diagnostics
        if d.location is not None
    ]


HEAD = "apiVersion: orchestrator/v1\n"


def test_a_schema_error_and_an_unknown_queue_are_reported_in_one_run(tmp_path: Path) -> None:
    """An unknown field in queues.a and a URL group routed to queue nosuch: both, in line order,
    and no "unknown queue a" for the group routed to the queue that had the schema error."""
    path = tmp_path / "site.yaml"
    path.write_text(
        HEAD + "queues:\n"
        "  a: {maxLenght: 100}\n"
        "  b: {}\n"
        "urlGroups:\n"
        "  a: {queue: a, urls: ['http://+:8080/a/']}\n"
        "  b: {queue: nosuch, urls: ['http://+:8080/b/']}\n"
        "workers:\n"
        "  a: {queue: a, command: [python3]}\n"
        "  b: {queue: b, command: [python3]}\n"
    )
    assert [
        (3, 7, 'unknown field "maxLenght"; did you mean "maxLength"?'),
        (7, 7, 'unknown queue "nosuch"'),
    ] == _errors(path)


def test_a_pool_with_a_schema_error_does_not_leave_its_queue_unserved(tmp_path: Path) -> None:
    """The only pool of a routed queue fails the schema: no "no worker pool serves it" as well."""
    path = tmp_path / "site.yaml"
    path.write_text(
        HEAD + "queues:\n"
        "  api: {}\n"
        "urlGroups:\n"
        "  api: {queue: api, urls: ['http://+:8080/api/']}\n"
        "workers:\n"
        "  api: {queue: api, command: [python3], processes: 0}\n"
    )
    assert [(7, 41, "must be at least 1, not 0")] == _errors(path)


def test_a_pool_without_a_readable_queue_silences_every_unserved_queue_check(
    tmp_path: Path,
) -> None:
    """A pool whose queue field is itself wrong may have served any queue: no guess is made."""
    path = tmp_path / "site.yaml"
    path.write_text(
        HEAD + "queues:\n"
        "  api: {}\n"
        "  spare: {}\n"
        "urlGroups:\n"
        "  api: {queue: api, urls: ['http://+:8080/api/']}\n"
        "workers:\n"
        "  api: {queue: [api], command: [python3]}\n"
    )
    assert [(8, 9, "must be a name (lowercase letters, digits and '-'), not a list")] == _errors(
        path
    )


def test_a_session_with_a_schema_error_skips_only_the_checks_that_need_it(tmp_path: Path) -> None:
    """A typo in session.tls: the https prefix is not also called uncovered (a later round), while
    checks that need no session still run."""
    path = tmp_path / "site.yaml"
    path.write_text(
        HEAD + "session:\n"
        "  tls: [{address: '0.0.0.0:8443', certFile: c.pem, keyfile: k.pem}]\n"
        "queues:\n"
        "  api: {}\n"
        "urlGroups:\n"
        "  api: {queue: api, urls: ['https://+:8443/api/']}\n"
        "workers:\n"
        "  api: {queue: api, command: [python3], user: root}\n"
    )
    assert [
        (3, 9, 'missing required field "keyFile"'),
        (3, 52, 'unknown field "keyfile"; did you mean "keyFile"?'),
        (9, 41, "workers may not run as root; set allowRoot: true to allow it"),
    ] == _errors(path)


def test_a_file_that_does_not_parse_hides_no_error_of_the_other_files(tmp_path: Path) -> None:
    """In a directory, a YAML syntax error in one file: the others are still checked in full, but a
    queue they name is not called unknown (the broken file may define it)."""
    (tmp_path / "a.yaml").write_text(HEAD + "queues:\n\tapi: {}\n")
    (tmp_path / "b.yaml").write_text(
        HEAD + "urlGroups:\n"
        "  api: {queue: api, urls: ['http://+:8080/api/']}\n"
        "workers:\n"
        "  api: {queue: api, command: [python3], processes: none}\n"
    )
    with pytest.raises(ManifestError) as info:
        load_manifest(str(tmp_path))
    got = [
        (d.location.file, d.location.line, d.summary.split(":")[0])
        for d in info.value.diagnostics
        if d.location is not None
    ]
    assert [
        (str(tmp_path / "a.yaml"), 3, "YAML syntax error"),
        (str(tmp_path / "b.yaml"), 5, "must be an integer, not a string"),
    ] == got


def test_a_dropped_auto_pool_keeps_its_dedicated_user_known_to_acls(tmp_path: Path) -> None:
    """An ACL naming orch-api, the user of pool api (user: auto) that failed the schema, does not
    add "unknown user orch-api" to the pool's own error."""
    from tests.unit.manifest.test_merge import FakeIdentities

    path = tmp_path / "site.yaml"
    path.write_text(
        HEAD + "queues:\n"
        "  api: {acl: [{user: orch-api}]}\n"
        "urlGroups:\n"
        "  api: {queue: api, urls: ['http://+:8080/api/']}\n"
        "workers:\n"
        "  api: {queue: api, command: [python3], user: auto, processes: -1}\n"
    )
    with pytest.raises(ManifestError) as info:
        load_manifest(str(path), identities=FakeIdentities({}, {}), strict_identities=True)
    assert ["must be at least 1, not -1"] == [d.summary for d in info.value.diagnostics]
