"""YAML text → plain data plus a map from JSON paths to source positions.

Owns: composing YAML with the safe loader, turning nodes into Python values while recording where each
key and value sits, YAML 1.1 merge keys (``<<``), and reporting YAML
syntax errors and duplicate keys with their line and column. PyYAML's ``safe_load`` keeps the last of
two duplicate keys silently; walking the node tree ourselves is how a duplicate becomes an error that
names both places. Must not import the schema, the checks or anything above ``errors``.
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
    #: Paths whose content YAML could not give whole (a duplicate key, a key that is not a
    #: string): the loader drops the object that holds them, as it does for a schema error.
    broken: list[PathT] = field(default_factory=list)
    #: The word as written for each boolean value YAML 1.1 read from ``yes``/``no``/``on``/``off``.
    words: dict[PathT, str] = field(default_factory=dict)

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


#: Plain scalars YAML 1.1 reads as booleans (PyYAML's resolver): a value written ``off`` arrives as
#: ``False``, so a message about it quotes what was written, not what was read.
_BOOL_WORDS = frozenset(
    w for word in ("yes", "no", "on", "off", "y", "n") for w in (word, word.title(), word.upper())
)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Walker:
    def __init__(self, doc: Document, problems: list[Diagnostic]) -> None:
        self.doc = doc
        self.problems = problems
        self.constructor = yaml.constructor.SafeConstructor()

    def mark(self, node: yaml.Node) -> tuple[int, int]:
        return (node.start_mark.line + 1, node.start_mark.column + 1)

    def problem(self, node: yaml.Node, path: PathT, summary: str, detail: str = "") -> None:
        line, col = self.mark(node)
        self.problems.append(
            Diagnostic(summary, detail, Location(self.doc.file, line, col, render_path(path)))
        )
        self.doc.broken.append(path)

    def key(self, key_node: yaml.Node, path: PathT, *, report: bool) -> str | None:
        """The key as a string, or ``None`` (reported when ``report``) when it cannot be one."""
        key = self.constructor.construct_object(key_node, deep=True)
        if isinstance(key, bool) or key is None:
            # YAML 1.1 reads on/off/yes/no as booleans and ~/null as null.
            if report:
                raw = getattr(key_node, "value", "")
                self.problem(
                    key_node,
                    path,
                    f"YAML reads {raw or 'an empty key'} as {str(key).lower()}; quote the name: "
                    f'"{raw}"',
                )
            return None
        if isinstance(key, int | float):
            return str(key)
        if not isinstance(key, str):
            if report:
                self.problem(key_node, path, "mapping keys must be strings")
            return None
        return key

    def pairs(
        self, node: yaml.MappingNode, path: PathT, *, report: bool
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The mapping's keys with their key and value nodes, merge keys applied (YAML 1.1).

        PyYAML's ``flatten_mapping`` puts merged pairs next to explicit ones, so an override looked
        like a duplicate key. Here explicit keys come first and beat merged ones; of several merged
        mappings (``<<: [*a, *b]``) the earlier wins; a key written twice explicitly is still an
        error that names both places. Merged mappings were reported where their anchor is written,
        so only this node's own keys are reported (``report``).
        """
        explicit: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        sources: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources.extend(
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                continue
            key = self.key(key_node, path, report=report)
            if key is None:
                continue
            if key in explicit:
                if report:
                    first = explicit[key][0].start_mark.line + 1
                    self.problem(
                        key_node,
                        (*path, key),
                        f'duplicate key "{key}"',
                        f"It is already defined at {self.doc.file}:{first}; a name may be "
                        "defined only once.",
                    )
                continue
            explicit[key] = (key_node, value_node)
        merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                if report:
                    self.problem(
                        source,
                        path,
                        "a merge key (<<) takes a mapping or a list of mappings",
                        "Write <<: *name, or <<: [*a, *b], where each anchor names a mapping.",
                    )
                continue
            for key, pair in self.pairs(source, path, report=False).items():
                merged.setdefault(key, pair)
        return {**{k: v for k, v in merged.items() if k not in explicit}, **explicit}

    def walk(self, node: yaml.Node, path: PathT) -> object:
        self.doc.values[path] = self.mark(node)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, object] = {}
            for key, (key_node, value_node) in self.pairs(node, path, report=True).items():
                self.doc.keys[(*path, key)] = self.mark(key_node)
                out[key] = self.walk(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
        value: object = self.constructor.construct_object(node, deep=True)
        if isinstance(value, bool) and getattr(node, "value", "") in _BOOL_WORDS:
            self.doc.words[path] = str(node.value)
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


def _is_empty(node: yaml.Node | None) -> bool:
    return node is None or (
        isinstance(node, yaml.ScalarNode) and node.value == "" and node.tag.endswith(":null")
    )


def parse_yaml(file: str, text: str) -> tuple[list[Document], list[Diagnostic]]:
    """Parse every document in ``text`` (``---``-separated documents merge like separate files).

    Returns:
        The documents (empty ones, such as after a trailing ``---``, skipped) and the problems
        found (syntax errors, duplicate keys).
    """
    problems: list[Diagnostic] = []
    docs: list[Document] = []
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        problem = _syntax_error(file, text, exc)
        if "undefined alias" in (exc.problem or "") and "\n---" in text:
            problem = Diagnostic(
                problem.summary,
                "Anchors (&name) reach only within one YAML document: define it again after the "
                "---, or put the documents in one.",
                problem.location,
            )
        problems.append(problem)
        return [], problems
    except yaml.YAMLError as exc:
        problems.append(Diagnostic(f"YAML error: {exc}", location=Location(file, 1, 1)))
        return [], problems
    for node in nodes:
        if _is_empty(node):
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
