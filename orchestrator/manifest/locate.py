"""YAML text → plain data plus a map from JSON paths to source positions.

Owns: composing YAML with the safe loader, turning nodes into Python values while recording where each
key and value sits, and reporting YAML syntax errors and duplicate keys with their line and column.
PyYAML's ``safe_load`` keeps the last of two duplicate keys silently; walking the node tree ourselves is
how a duplicate becomes an error that names both places.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from orchestrator.errors import Diagnostic, Location

PathT = tuple[str | int, ...]


@dataclass(slots=True)
class Document:
    """One YAML document: its data, and the 1-based (line, column) of each path's key and value."""

    file: str
    data: object
    keys: dict[PathT, tuple[int, int]] = field(default_factory=dict)
    values: dict[PathT, tuple[int, int]] = field(default_factory=dict)

    def location(self, path: PathT, *, key: bool = True) -> Location:
        """Where ``path`` is written: at its key when it has one, else at its value.

        Falls back to the nearest enclosing path that has a position.
        """
        probe = path
        while True:
            table = self.keys if key and probe in self.keys else self.values
            if probe in table:
                line, col = table[probe]
                return Location(self.file, line, col, render_path(path))
            if not probe:
                return Location(self.file, 1, 1, render_path(path))
            probe = probe[:-1]


def render_path(path: PathT) -> str:
    """``("workers", "api", "command", 0)`` → ``workers.api.command[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Walker:
    def __init__(self, doc: Document, problems: list[Diagnostic]) -> None:
        self.doc = doc
        self.problems = problems
        self.constructor = yaml.constructor.SafeConstructor()

    def mark(self, node: yaml.Node) -> tuple[int, int]:
        return (node.start_mark.line + 1, node.start_mark.column + 1)

    def walk(self, node: yaml.Node, path: PathT) -> object:
        self.doc.values[path] = self.mark(node)
        if isinstance(node, yaml.MappingNode):
            self.constructor.flatten_mapping(node)
            out: dict[str, object] = {}
            seen: dict[str, yaml.Node] = {}
            for key_node, value_node in node.value:
                key = self.constructor.construct_object(key_node, deep=True)
                if isinstance(key, bool) or key is None:
                    # YAML 1.1 reads on/off/yes/no as booleans and ~/null as null.
                    line, col = self.mark(key_node)
                    raw = getattr(key_node, "value", "")
                    self.problems.append(
                        Diagnostic(
                            f"YAML reads {raw or 'an empty key'} as {str(key).lower()}; quote the name: "
                            f'"{raw}"',
                            location=Location(self.doc.file, line, col, render_path(path)),
                        )
                    )
                    continue
                if isinstance(key, int | float):
                    key = str(key)
                if not isinstance(key, str):
                    line, col = self.mark(key_node)
                    self.problems.append(
                        Diagnostic(
                            "mapping keys must be strings",
                            location=Location(self.doc.file, line, col, render_path(path)),
                        )
                    )
                    continue
                if key in seen:
                    line, col = self.mark(key_node)
                    first = seen[key].start_mark.line + 1
                    self.problems.append(
                        Diagnostic(
                            f'duplicate key "{key}"',
                            f"It is already defined at {self.doc.file}:{first}; a name may be "
                            "defined only once.",
                            Location(self.doc.file, line, col, render_path((*path, key))),
                        )
                    )
                    continue
                seen[key] = key_node
                self.doc.keys[(*path, key)] = self.mark(key_node)
                out[key] = self.walk(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
        value: object = self.constructor.construct_object(node, deep=True)
        return value


def _syntax_error(file: str, text: str, exc: yaml.MarkedYAMLError) -> Diagnostic:
    """A YAML syntax error in plain words, at the place a person would look."""
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    lines = text.count("\n") + 1
    # An unclosed quote or bracket is only noticed at the end of the file: point at its start.
    if exc.context_mark is not None and (
        mark is None or mark.line + 1 >= lines or "end of stream" in problem
    ):
        mark = exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    context = exc.context or ""
    detail = ""
    if "'\\t'" in problem or "\t" in problem:
        summary = "tab character: YAML indents with spaces only"
    elif "while scanning a quoted scalar" in context:
        summary = "this quoted string is never closed"
    elif "flow sequence" in context or "flow mapping" in context:
        kind = "list" if "sequence" in context else "mapping"
        summary = f"this {kind} is never closed, or an item lacks a comma"
        detail = f"YAML said: {problem}."
    elif problem.startswith("mapping values are not allowed"):
        summary = "unexpected ':' here"
        detail = (
            "Quote a value that contains ': ', or check that this line is not indented "
            "more than the key above it."
        )
    elif problem.startswith("expected <block end>") or "block mapping" in context:
        summary = "the indentation does not line up with the keys above it"
        detail = "Keys of one mapping must start in the same column (spaces only)."
    else:
        summary = problem + (f" ({context})" if context else "")
    return Diagnostic(f"YAML syntax error: {summary}", detail, Location(file, line, col))


def parse_yaml(file: str, text: str) -> tuple[list[Document], list[Diagnostic]]:
    """Parse every document in ``text``.

    Returns:
        The documents (empty ones skipped) and the problems found (syntax errors, duplicate keys).
    """
    problems: list[Diagnostic] = []
    docs: list[Document] = []
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        problems.append(_syntax_error(file, text, exc))
        return [], problems
    except yaml.YAMLError as exc:
        problems.append(Diagnostic(f"YAML error: {exc}", location=Location(file, 1, 1)))
        return [], problems
    for node in nodes:
        if node is None:
            continue
        doc = Document(file, None)
        try:
            doc.data = _Walker(doc, problems).walk(node, ())
        except yaml.constructor.ConstructorError as exc:
            mark = exc.problem_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problems.append(
                Diagnostic(f"YAML error: {exc.problem}", location=Location(file, line, col))
            )
            continue
        docs.append(doc)
    return docs, problems
