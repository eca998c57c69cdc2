"""The manifest's JSON Schema: loading it from the package, and turning its errors into plain words.

Owns: ``schema_text``, ``schema``, ``schema_problems``/``schema_errors`` and ``apply_defaults``.
jsonschema's own messages name Python types and regular expressions; users get "must be a duration
such as 30s", "did you mean" and "quote it" instead. Must not import the loader or the checks.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources

import jsonschema

from orchestrator.errors import Diagnostic
from orchestrator.manifest.locate import Document, PathT

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def schema_text() -> str:
    """The schema exactly as shipped (``orchestrator schema`` prints this)."""
    return (
        resources.files("orchestrator")
        .joinpath("schemas/manifest.schema.json")
        .read_text(encoding="utf-8")
    )


@cache
def schema() -> dict[str, object]:
    """The parsed schema."""
    data = json.loads(schema_text())
    assert isinstance(data, dict)
    return data


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _defs() -> dict[str, dict[str, object]]:
    defs = schema()["$defs"]
    assert isinstance(defs, dict)
    return defs


def _pattern_hint(pattern: object) -> str:
    defs = _defs()
    if pattern == defs["duration"]["pattern"]:
        return "must be a duration such as 30s, 5m, 1h30m or 250ms"
    if pattern == defs["size"]["pattern"]:
        return "must be a size such as 16KiB, 10MB or 512"
    if pattern == defs["name"]["pattern"]:
        return (
            "is not a valid name: use lowercase letters, digits and '-', starting and ending "
            "with a letter or digit"
        )
    if pattern == "^([01][0-9]|2[0-3]):[0-5][0-9]$":
        return "must be a time of day written HH:MM (24-hour)"
    if pattern == "^/":
        return "must be a path starting with '/'"
    if isinstance(pattern, str) and pattern.startswith("^S-1-"):
        return "must be a Windows SID such as S-1-5-21-1-2-3-1001"
    if isinstance(pattern, str) and pattern.startswith("^(\\+|\\*"):
        return "must be HOST:PORT, e.g. 0.0.0.0:8443 or +:443"
    if isinstance(pattern, str) and "\\\\" in pattern:
        return "must be written DOMAIN\\user"
    if pattern == "^[A-Za-z_][A-Za-z0-9_]*$":
        return "is not a valid environment variable name"
    if pattern == "^.+:[0-9]{1,5}$":
        return "must be HOST:PORT, e.g. 127.0.0.1:9101"
    return f"does not match the pattern {pattern}"


def _type_hint(pattern: object) -> str:
    """What a value of a patterned field is called, for "must be X, not Y"."""
    defs = _defs()
    if pattern == defs["duration"]["pattern"]:
        return "a duration such as 30s, 5m, 1h30m or 250ms"
    if pattern == defs["size"]["pattern"]:
        return "a size such as 16KiB, 10MB or 512"
    if pattern == defs["name"]["pattern"]:
        return "a name (lowercase letters, digits and '-')"
    hint = _pattern_hint(pattern)
    return hint.removeprefix("must be ") if hint.startswith("must be ") else ""


#: Kubernetes quantity suffixes and the size units they mean here (Ki is KiB; a bare k or K is KB).
_K8S_SIZE = {
    "Ki": "KiB",
    "Mi": "MiB",
    "Gi": "GiB",
    "Ti": "TiB",
    "k": "KB",
    "K": "KB",
    "M": "MB",
    "G": "GB",
    "T": "TB",
}
_K8S_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T)$")
_K8S_MILLICPU = re.compile(r"^([0-9]+)m$")


def _quantity_hint(value: object) -> str:
    """'; did you mean "256MiB"?' for a Kubernetes size such as 256Mi, else ''."""
    match = _K8S_QUANTITY.match(value) if isinstance(value, str) else None
    if match is None:
        return ""
    unit = _K8S_SIZE[match[2]]
    return f'; did you mean "{match[1]}{unit}"? (Kubernetes\' {match[2]} is written {unit} here)'


def _millicpu_hint(path: PathT, value: object) -> str:
    """'; did you mean 0.5?' for a Kubernetes CPU quantity such as 500m in a cpu field, else ''."""
    match = _K8S_MILLICPU.match(value) if isinstance(value, str) else None
    if match is None or not path or path[-1] != "cpu":
        return ""
    cores = int(match[1]) / 1000
    return f"; did you mean {cores:g}? (Kubernetes' {value} is {cores:g} cores here)"


def _word_hint(doc: Document, path: PathT, value: object) -> str:
    """The hint for a boolean YAML 1.1 read from a word such as off (the keys' hint, for values)."""
    word = doc.words.get(path)
    if not isinstance(value, bool) or word is None:
        return ""
    return f' (YAML reads {word} as {str(value).lower()}; quote it: "{word}")'


def _shown(doc: Document, path: PathT, value: object) -> str:
    """A value as the user wrote it: ``off``, not ``false``, for a YAML 1.1 boolean word."""
    word = doc.words.get(path)
    return word if isinstance(value, bool) and word is not None else json.dumps(value)


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def _leaf(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For anyOf/oneOf, the error of the branch that is not plain ``null``."""
    while error.validator in ("anyOf", "oneOf") and error.context:
        branches = [
            e
            for e in error.context
            if not (isinstance(e.schema, dict) and e.schema == {"type": "null"})
        ]
        if not branches:
            break
        error = max(branches, key=lambda e: len(e.absolute_path))
    return error


def _choices(error: jsonschema.ValidationError) -> str | None:
    """'an integer or "auto"' for a oneOf/anyOf of a type and constants that the value matches
    in none of its branches (the branch errors alone would each tell half the story)."""
    if error.validator not in ("anyOf", "oneOf") or not isinstance(error.validator_value, list):
        return None
    words = []
    for branch in error.validator_value:
        if not isinstance(branch, dict):
            return None
        if "const" in branch:
            words.append(json.dumps(branch["const"]))
        elif branch.get("type") in _TYPE_WORDS and branch.get("type") != "null":
            words.append(_TYPE_WORDS[str(branch["type"])])
        else:
            return None
    return " or ".join(words)


def _diagnostics(error: jsonschema.ValidationError, doc: Document) -> Iterator[Diagnostic]:
    alternatives = _choices(error)
    value = error.instance
    if alternatives is not None and not (isinstance(value, int) and not isinstance(value, bool)):
        at: PathT = tuple(error.absolute_path)
        where = doc.location(at, key=True)
        yield Diagnostic(
            f"must be {alternatives}, not {_shown(doc, at, value)}{_word_hint(doc, at, value)}",
            location=where,
        )
        return
    error = _leaf(error)
    path: PathT = tuple(error.absolute_path)
    inst = error.instance
    sch = error.schema if isinstance(error.schema, dict) else {}
    v = error.validator
    val: object = error.validator_value
    if v == "additionalProperties" and isinstance(inst, dict):
        allowed = sorted(dict(sch.get("properties", {})))
        for extra in _extras(sch, inst):
            hint = _did_you_mean(extra, allowed) or (
                f"; allowed fields: {', '.join(allowed)}" if allowed else ""
            )
            yield Diagnostic(
                f'unknown field "{extra}"{hint}', location=doc.location((*path, extra))
            )
        return
    if "propertyNames" in error.absolute_schema_path:
        # jsonschema checks each key as an instance at the parent's path: point at the key itself.
        if v == "maxLength":
            msg = f'name "{inst}" is longer than {val} characters'
        elif v == "pattern":
            msg = f'name "{inst}" {_pattern_hint(val)}'
        else:
            msg = f'name "{inst}": {error.message}'
        yield Diagnostic(msg, location=doc.location((*path, str(inst))))
        return
    loc = doc.location(path, key=True)
    if v == "required":
        missing = [
            r
            for r in (val if isinstance(val, list) else [])
            if isinstance(inst, dict) and r not in inst
        ]
        for name in missing:
            yield Diagnostic(f'missing required field "{name}"', location=loc)
        return
    if v == "type" and "enum" in sch:
        return  # a value of the wrong type is not one of the choices either: that error says more
    if v == "type":
        wanted = val if isinstance(val, list) else [val]
        words = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in wanted if t != "null")
        pattern = sch.get("pattern")
        if pattern and "string" in wanted:
            words = _type_hint(pattern) or words
        hint = _word_hint(doc, path, inst) or _millicpu_hint(path, inst)
        yield Diagnostic(f"must be {words}, not {_type_name(inst)}{hint}", location=loc)
        return
    if v == "maximum" and sch.get("pattern") == _defs()["duration"]["pattern"]:
        yield Diagnostic(
            f'{json.dumps(inst)} needs a unit: write "{inst}s" or "{inst}m" (only 0 may be bare)',
            location=loc,
        )
        return
    if v == "const":
        yield Diagnostic(
            f'must be "{val}", not {_shown(doc, path, inst)}{_word_hint(doc, path, inst)}',
            location=loc,
        )
        return
    if v == "enum":
        # A boolean in an enum stands for a YAML word (a bare off): name the words only.
        choices = [str(c) for c in (val if isinstance(val, list) else []) if isinstance(c, str)]
        word = doc.words.get(path)
        if isinstance(inst, bool) and word is not None:
            # on/off for a state: quoting alone still fails, so name the state it meant too.
            meant = "enabled" if inst else "disabled"
            hint = _word_hint(doc, path, inst) + (
                f'; did you mean "{meant}"?' if meant in choices else ""
            )
        else:
            hint = _did_you_mean(str(inst), choices)
        yield Diagnostic(
            f"must be one of {', '.join(choices)}, not {_shown(doc, path, inst)}{hint}",
            location=loc,
        )
        return
    if v == "pattern":
        hint = _quantity_hint(inst) if val == _defs()["size"]["pattern"] else ""
        yield Diagnostic(f"{json.dumps(inst)} {_pattern_hint(val)}{hint}", location=loc)
        return
    if v in ("minimum", "exclusiveMinimum"):
        word = "at least" if v == "minimum" else "more than"
        yield Diagnostic(f"must be {word} {val}, not {inst}", location=loc)
        return
    if v == "maximum":
        yield Diagnostic(f"must be at most {val}, not {inst}", location=loc)
        return
    if v == "minItems":
        yield Diagnostic(f"must have at least {val} item{'s' if val != 1 else ''}", location=loc)
        return
    if v == "minLength":
        yield Diagnostic("must not be empty", location=loc)
        return
    if v == "maxLength":
        yield Diagnostic(f"must be at most {val} characters long", location=loc)
        return
    if v in ("minProperties", "maxProperties"):
        names = ", ".join(sorted(dict(sch.get("properties", {}))))
        yield Diagnostic(f"must name exactly one of {names}", location=loc)
        return
    if v == "uniqueItems":
        yield Diagnostic("must not list the same item twice", location=loc)
        return
    yield Diagnostic(error.message, location=loc)


def _extras(sch: object, inst: dict[str, object]) -> list[str]:
    """The fields of ``inst`` its schema does not know (``x-`` fields at the top are known)."""
    sch = sch if isinstance(sch, dict) else {}
    known = set(dict(sch.get("properties", {})))
    patterns = [re.compile(p) for p in dict(sch.get("patternProperties", {}))]
    return sorted(k for k in inst if k not in known and not any(p.search(k) for p in patterns))


def _owner(error: jsonschema.ValidationError) -> PathT:
    """The manifest path the error is about: for a bad name, the named entry itself."""
    path: PathT = tuple(error.absolute_path)
    if "propertyNames" in error.absolute_schema_path:
        return (*path, str(error.instance))
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        # Unknown fields: the error is about the object that has them (its path), except at the
        # top, where an unknown field is a section of its own (``queus:``).
        extra = _extras(error.schema, error.instance)
        return (extra[0],) if not path and extra else path
    return path


def schema_problems(doc: Document) -> list[tuple[PathT, Diagnostic]]:
    """Every schema problem of one document, with the manifest path each one is about.

    The loader uses the paths to drop only the objects that failed (a queue, a URL group, a pool,
    the session) and to check the rest.
    """
    out = [(_owner(e), d) for e in _validator().iter_errors(doc.data) for d in _diagnostics(e, doc)]
    return sorted(
        out, key=lambda p: (p[1].location.line, p[1].location.column) if p[1].location else (0, 0)
    )


def schema_errors(doc: Document) -> list[Diagnostic]:
    """Every schema problem of one document, in source order."""
    return [d for _, d in schema_problems(doc)]


def apply_defaults(data: object, node: dict[str, object] | None = None) -> object:
    """Return ``data`` with every missing property filled from the schema's ``default``.

    Defaults live in the schema only, so the schema, the docs and the model cannot disagree.
    """
    node = node if node is not None else schema()
    if "$ref" in node:
        ref = str(node["$ref"]).rsplit("/", 1)[-1]
        node = _defs()[ref]
    if not isinstance(data, dict) or node.get("type") not in ("object", ["object"]):
        return data
    props = node.get("properties")
    out = dict(data)
    if isinstance(props, dict):
        for name, sub in props.items():
            if not isinstance(sub, dict):
                continue
            if name not in out and sub.get("default") is not None:
                out[name] = json.loads(json.dumps(sub["default"]))
            if name in out:
                out[name] = apply_defaults(out[name], sub)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and not isinstance(props, dict):
        out = {k: apply_defaults(v, extra) for k, v in out.items()}
    return out
