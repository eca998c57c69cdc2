"""Offline validation of rendered Kubernetes documents (``render kubernetes --check`` and the tests).

Owns: checking documents the way an API server would before storing them, without a cluster:

- core kinds (Deployment, Service, ServiceAccount, NetworkPolicy, Secret, ...) against the OpenAPI
  schemas that ``kubernetes-validate`` bundles, in strict mode (unknown fields are errors), for
  Kubernetes ``KUBERNETES_VERSION``;
- Gateway API kinds (Gateway, HTTPRoute, GatewayClass, ReferenceGrant) against the vendored
  ``GATEWAY_API_VERSION`` CRDs: the API server's defaults, the ``openAPIV3Schema`` of the served
  version named by ``apiVersion`` (closed with ``additionalProperties: false`` so unknown fields
  are errors), list uniqueness (``x-kubernetes-list-type``), then every CEL rule
  (``x-kubernetes-validations``), evaluated with ``cel-python``;
- the ``metadata`` rules neither schema states (name, namespace, label and annotation syntax).

Must not import: os, socket, subprocess, threading, logging, time or asyncio (``orchestrator.render``
is pure; the CRDs are read with ``importlib.resources``), nor any ``orchestrator`` module but
``errors``. The optional dependencies (extra ``orchestrator[kubernetes]``) are imported here only;
their absence surfaces as an ``OrchestratorError`` when a check is asked for, never at import.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import jsonschema
import yaml

from orchestrator.errors import OrchestratorError

_MISSING_EXTRA: str | None = None
try:
    import celpy
    import kubernetes_validate
    from celpy import celtypes
    from celpy.adapter import json_to_cel
    from celpy.evaluation import CELEvalError, CELFunction, base_functions
except ImportError as error:  # the optional extra is not installed: checking is unavailable
    _MISSING_EXTRA = str(error)
if TYPE_CHECKING:
    import lark

# The newest schemas kubernetes-validate 1.37 bundles. Pinned rather than "latest" so a new
# kubernetes-validate release cannot change what passes without a change here.
KUBERNETES_VERSION = "1.37"
GATEWAY_API_VERSION = "v1.6.1"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
_CRD_DIR = ("crds", f"gateway-api-{GATEWAY_API_VERSION}")
_CRD_FILES = ("gatewayclasses.yaml", "gateways.yaml", "httproutes.yaml", "referencegrants.yaml")

Path = tuple[str | int, ...]
Problem = tuple[Path, str]

# -- metadata ---------------------------------------------------------------------------------
# The API server's name rules (k8s.io/apimachinery/pkg/util/validation). CRD schemas say nothing
# about metadata, and the core schemas only give it types, so these are checked for every kind.
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
# Kinds whose names must be a DNS-1035 label (a Service name becomes a DNS label and env names) or
# a DNS-1123 label; every other kind takes a DNS-1123 subdomain.
_DNS1035_LABEL_KINDS = frozenset({"Service"})
_DNS1123_LABEL_KINDS = frozenset({"Namespace"})
# ObjectMeta's fields: a CRD's schema leaves metadata open, but the API server does not.
_OBJECT_META_FIELDS = frozenset(
    {
        "annotations",
        "creationTimestamp",
        "deletionGracePeriodSeconds",
        "deletionTimestamp",
        "finalizers",
        "generateName",
        "generation",
        "labels",
        "managedFields",
        "name",
        "namespace",
        "ownerReferences",
        "resourceVersion",
        "selfLink",
        "uid",
    }
)


def check_documents(docs: list[dict[str, object]]) -> list[str]:
    """Validate rendered Kubernetes documents offline, as an API server would on create.

    Args:
        docs: the documents, as plain JSON-like data (each with apiVersion, kind and metadata).

    Returns:
        One line per problem, ``Kind/name: json.path: why``, in document order; empty when every
        document is valid. A core document reports the first schema problem kubernetes-validate
        finds; a Gateway API document reports all of its schema problems, then its failed CEL
        rules unless a value has the wrong type (the rules assume the schema's types).

    Raises:
        OrchestratorError: the optional dependencies (``orchestrator[kubernetes]``) are missing.
    """
    if _MISSING_EXTRA is not None:
        raise OrchestratorError(
            "Checking Kubernetes documents needs the optional dependencies"
            " kubernetes-validate and cel-python",
            detail=f"Install them with: pip install 'orchestrator[kubernetes]' ({_MISSING_EXTRA})",
        )
    problems: list[str] = []
    for index, doc in enumerate(docs):
        name = _object_name(index, doc)
        problems.extend(f"{name}: {_json_path(path)}: {why}" for path, why in _check_document(doc))
    return problems


def _object_name(index: int, doc: Mapping[str, object]) -> str:
    kind = doc.get("kind")
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if isinstance(kind, str) and isinstance(name, str):
        return f"{kind}/{name}"
    return f"{kind if isinstance(kind, str) else 'document'} #{index + 1}"


def _json_path(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(document)"


def _check_document(doc: dict[str, object]) -> list[Problem]:
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [((), "apiVersion and kind must both be strings")]
    group, _, version = api_version.rpartition("/")
    is_gateway_api = group == GATEWAY_API_GROUP
    problems = _metadata_problems(kind, doc.get("metadata"), closed=is_gateway_api)
    if is_gateway_api:
        problems.extend(_gateway_api_problems(kind, version, doc))
    else:
        problems.extend(_core_problems(api_version, kind, doc))
    return problems


def _metadata_problems(kind: str, metadata: object, *, closed: bool) -> list[Problem]:
    if not isinstance(metadata, dict):
        return [(("metadata",), "metadata must be an object with a name")]
    problems: list[Problem] = []
    if closed:
        problems.extend(
            (("metadata",), f"unknown field {key!r} (not a field of ObjectMeta)")
            for key in sorted(set(metadata) - _OBJECT_META_FIELDS)
        )
    name = metadata.get("name")
    if not isinstance(name, str):
        problems.append((("metadata", "name"), "a name (string) is required"))
    elif kind in _DNS1035_LABEL_KINDS:
        problems.extend(_label_problems(("metadata", "name"), name, _DNS1035_LABEL, "DNS-1035"))
    elif kind in _DNS1123_LABEL_KINDS:
        problems.extend(_label_problems(("metadata", "name"), name, _DNS1123_LABEL, "DNS-1123"))
    else:
        problems.extend(_subdomain_problems(("metadata", "name"), name))
    namespace = metadata.get("namespace")
    if namespace is not None:
        if isinstance(namespace, str):
            where: Path = ("metadata", "namespace")
            problems.extend(_label_problems(where, namespace, _DNS1123_LABEL, "DNS-1123"))
        else:
            problems.append((("metadata", "namespace"), "must be a string"))
    for field in ("labels", "annotations"):
        problems.extend(_string_map_problems(("metadata", field), metadata.get(field)))
    return problems


def _label_problems(path: Path, value: str, pattern: re.Pattern[str], what: str) -> list[Problem]:
    if len(value) <= 63 and pattern.fullmatch(value):
        return []
    return [
        (path, f"{value!r} is not a valid {what} label ({pattern.pattern}, at most 63 characters)")
    ]


def _subdomain_problems(path: Path, value: str) -> list[Problem]:
    if len(value) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(value):
        return []
    return [
        (path, f"{value!r} is not a valid DNS-1123 subdomain (lowercase, at most 253 characters)")
    ]


def _string_map_problems(path: Path, value: object) -> list[Problem]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [(path, "must be a map of strings")]
    problems: list[Problem] = []
    for key, item in value.items():
        prefix, _, name = str(key).rpartition("/")
        valid_prefix = not prefix or not _subdomain_problems(path, prefix)
        if not (valid_prefix and len(name) <= 63 and _QUALIFIED_NAME.fullmatch(name)):
            problems.append((path, f"{key!r} is not a valid key ([prefix/]name, name at most 63)"))
        if not isinstance(item, str):
            problems.append(((*path, str(key)), "must be a string"))
        elif path[-1] == "labels" and not (
            item == "" or (len(item) <= 63 and _QUALIFIED_NAME.fullmatch(item))
        ):
            problems.append(((*path, str(key)), f"{item!r} is not a valid label value"))
    return problems


# -- core kinds -------------------------------------------------------------------------------
def _core_problems(api_version: str, kind: str, doc: dict[str, object]) -> list[Problem]:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [(tuple(error.path), str(error.message))]
    except kubernetes_validate.SchemaNotFoundError:
        why = f"no schema for kind {kind} in {api_version} (Kubernetes {KUBERNETES_VERSION})"
        return [((), why)]
    return []


# -- Gateway API kinds ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Rule:
    """One compiled ``x-kubernetes-validations`` entry."""

    text: str
    message: str
    program: celpy.Runner
    message_program: celpy.Runner | None
    field_path: str
    # A transition rule (it reads ``oldSelf``) runs only when an object is updated; a rendered
    # object is always created, so the API server would not run it either.
    transition: bool


@dataclass(frozen=True, slots=True)
class _CrdVersion:
    kind: str
    version: str
    schema: dict[str, object]  # closed: unknown fields fail
    validator: jsonschema.protocols.Validator
    rules: Mapping[str, _Rule]


def _gateway_api_problems(kind: str, version: str, doc: dict[str, object]) -> list[Problem]:
    crds = _gateway_api_crds()
    crd = crds.get((kind, version))
    if crd is None:
        served = sorted(v for k, v in crds if k == kind)
        if served:
            why = f"{GATEWAY_API_GROUP}/{version} is not served for {kind} (served: {served})"
        else:
            why = f"kind {kind} is not in the Gateway API {GATEWAY_API_VERSION} standard channel"
        return [((), why)]
    # The API server applies the schema's defaults before it validates; several CEL rules rely on
    # them (a backendRef's kind defaults to Service, a listener's TLS mode to Terminate).
    # Any: JSON of a shape nobody has checked yet; finding out is the validator's job.
    defaulted: Any = copy.deepcopy(doc)
    _apply_defaults(crd.schema, defaulted)
    errors = sorted(
        crd.validator.iter_errors(defaulted), key=lambda e: _json_path(tuple(e.absolute_path))
    )
    problems: list[Problem] = [(tuple(error.absolute_path), error.message) for error in errors]
    problems.extend(_list_type_problems(crd.schema, defaulted, ()))
    # Like the API server, run the rules unless a value has the wrong type: the rules assume the
    # schema's types, and would only add confusing evaluation errors.
    if not any(error.validator == "type" for error in errors):
        problems.extend(_cel_problems(crd.schema, defaulted, (), crd.rules))
    return problems


@functools.cache
def _gateway_api_crds() -> dict[tuple[str, str], _CrdVersion]:
    """Load the vendored CRDs once: the served versions, closed schemas and compiled rules."""
    environment = celpy.Environment()
    loaded: dict[tuple[str, str], _CrdVersion] = {}
    for crd in _vendored_crds():
        spec = _mapping(crd.get("spec"))
        kind = str(_mapping(spec.get("names")).get("kind"))
        for entry in _sequence(spec.get("versions")):
            version = _mapping(entry)
            if not version.get("served"):
                continue
            schema = _closed(_mapping(_mapping(version.get("schema")).get("openAPIV3Schema")))
            validator_class = jsonschema.Draft202012Validator
            validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
            rules = {
                text: _compile_rule(environment, validation)
                for text, validation in _validations(schema)
            }
            name = str(version.get("name"))
            loaded[(kind, name)] = _CrdVersion(kind, name, schema, validator, rules)
    return loaded


def _vendored_crds() -> Iterator[dict[str, object]]:
    directory = resources.files("orchestrator.render").joinpath(*_CRD_DIR)
    # The C loader when PyYAML has it: it parses the 430 kB HTTPRoute CRD ten times faster, and
    # is as safe as safe_load (SafeLoader's constructors).
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for name in _CRD_FILES:
        yield _mapping(yaml.load(directory.joinpath(name).read_text("utf-8"), Loader=loader))


def _mapping(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _sequence(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _closed(schema: dict[str, object]) -> dict[str, object]:
    """Return a copy where every object schema that lists ``properties`` rejects other keys.

    Kubernetes prunes unknown fields silently (or rejects them with ``kubectl --validate=strict``);
    either way a renderer that writes one is wrong, so the check treats them as errors. Objects
    that keep unknown fields on purpose (``x-kubernetes-preserve-unknown-fields``) or declare
    ``additionalProperties`` stay as they are, and so do ``oneOf``/``anyOf``/``allOf``/``not``
    branches: they only constrain fields declared beside them.
    """
    closed = dict(schema)
    properties = schema.get("properties")
    if isinstance(properties, dict):
        closed["properties"] = {key: _closed(_mapping(sub)) for key, sub in properties.items()}
        if "additionalProperties" not in schema and not schema.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            closed["additionalProperties"] = False
    for keyword in ("items", "additionalProperties"):
        sub = schema.get(keyword)
        if isinstance(sub, dict):
            closed[keyword] = _closed(sub)
    return closed


def _children(
    schema: Mapping[str, object], value: object, path: Path
) -> Iterator[tuple[dict[str, object], object, Path]]:
    """Yield (schema, value, path) for every child of ``value`` that the schema describes."""
    if isinstance(value, dict):
        properties = _mapping(schema.get("properties"))
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, extra)
            if isinstance(sub, dict):
                yield sub, item, (*path, key)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                yield items, item, (*path, index)


def _apply_defaults(schema: Mapping[str, object], value: object) -> None:
    """Fill absent properties from the schema's ``default``, in place, as the API server does."""
    if isinstance(value, dict):
        for key, sub in _mapping(schema.get("properties")).items():
            if isinstance(sub, dict) and "default" in sub and key not in value:
                value[key] = copy.deepcopy(sub["default"])
    for sub_schema, item, _ in _children(schema, value, ()):
        _apply_defaults(sub_schema, item)


def _list_type_problems(
    schema: Mapping[str, object], value: object, path: Path
) -> Iterator[Problem]:
    """Duplicates in ``set`` lists and duplicate keys in ``map`` lists, which the server rejects."""
    list_type = schema.get("x-kubernetes-list-type")
    if isinstance(value, list) and list_type in ("set", "map"):
        key_names = [str(k) for k in _sequence(schema.get("x-kubernetes-list-map-keys"))]
        seen: list[object] = []
        for index, item in enumerate(value):
            if list_type == "map" and isinstance(item, dict):
                key: object = {name: item.get(name) for name in key_names}
            else:
                key = item
            if key in seen:
                yield (*path, index), f"Duplicate value: {json.dumps(key, sort_keys=True)}"
            seen.append(key)
    for sub_schema, item, sub_path in _children(schema, value, path):
        yield from _list_type_problems(sub_schema, item, sub_path)


def _validations(schema: Mapping[str, object]) -> Iterator[tuple[str, dict[str, object]]]:
    """Yield (rule text, validation) for every ``x-kubernetes-validations`` entry in a schema."""
    for validation in _sequence(schema.get("x-kubernetes-validations")):
        entry = _mapping(validation)
        yield str(entry.get("rule")), entry
    for sub in _mapping(schema.get("properties")).values():
        yield from _validations(_mapping(sub))
    for keyword in ("items", "additionalProperties"):
        sub = schema.get(keyword)
        if isinstance(sub, dict):
            yield from _validations(sub)


def _cel_problems(
    schema: Mapping[str, object], value: object, path: Path, rules: Mapping[str, _Rule]
) -> Iterator[Problem]:
    """Evaluate the rules at every node of ``value`` that its schema node carries rules for."""
    for validation in _sequence(schema.get("x-kubernetes-validations")):
        rule = rules[str(_mapping(validation).get("rule"))]
        if not rule.transition:
            yield from _evaluate(rule, schema, value, path)
    for sub_schema, item, sub_path in _children(schema, value, path):
        yield from _cel_problems(sub_schema, item, sub_path, rules)


def _evaluate(
    rule: _Rule, schema: Mapping[str, object], value: object, path: Path
) -> Iterator[Problem]:
    where: Path = (*path, rule.field_path) if rule.field_path else path
    context = {"self": to_cel(schema, value)}
    try:
        result = rule.program.evaluate(context)
    except CELEvalError as error:
        # The API server reports a rule that errors at runtime as a failure, never as a pass.
        # celpy appends its whole activation to some messages; the first clause is the reason.
        detail = str(error.args[0] if error.args else error).split(" (in activation", 1)[0]
        yield where, f"rule {rule.text!r} could not be evaluated: {detail}"
        return
    if not isinstance(result, celtypes.BoolType):
        yield where, f"rule {rule.text!r} returned {type(result).__name__}, not a bool"
    elif not result:
        yield where, _message(rule, context)


def _message(rule: _Rule, context: dict[str, celtypes.Value]) -> str:
    # As the API server does: a messageExpression that fails or yields "" falls back to message.
    if rule.message_program is not None:
        try:
            text = rule.message_program.evaluate(context)
        except CELEvalError:
            text = None
        # str, not only StringType: celpy's string concatenation returns a plain str.
        if isinstance(text, str) and text.strip():
            return str(text)
    return rule.message


# CEL's macros: the parser keeps them as calls, and the evaluator expands them by name.
_MACROS = frozenset({"has", "all", "exists", "exists_one", "map", "filter"})


def _compile_rule(environment: celpy.Environment, validation: Mapping[str, object]) -> _Rule:
    """Compile one validation, refusing rules that call a function this module cannot evaluate.

    Raises:
        ValueError: the rule calls a function neither celpy nor ``KUBERNETES_CEL_FUNCTIONS`` has.
            That is a gap in this module (a new CRD release used a new library function), and
            must fail loudly rather than let every object pass the rule.
    """
    text = str(validation.get("rule"))
    ast = environment.compile(text)
    unknown = _called_functions(ast) - _MACROS - set(base_functions)
    unknown -= set(KUBERNETES_CEL_FUNCTIONS)
    if unknown:
        raise ValueError(f"CEL rule {text!r} calls functions not implemented: {sorted(unknown)}")
    message_text = validation.get("messageExpression")
    message_program = None
    if isinstance(message_text, str):
        message_program = environment.program(
            environment.compile(message_text), functions=KUBERNETES_CEL_FUNCTIONS
        )
    message = validation.get("message")
    return _Rule(
        text=text,
        message=message if isinstance(message, str) and message else f"failed rule: {text}",
        program=environment.program(ast, functions=KUBERNETES_CEL_FUNCTIONS),
        message_program=message_program,
        field_path=str(validation.get("fieldPath") or ""),
        transition="oldSelf" in _identifiers(ast),
    )


def _called_functions(ast: lark.Tree[lark.Token]) -> set[str]:
    """Names of the functions and methods a parsed CEL expression calls."""
    names: set[str] = set()
    for node in ast.iter_subtrees():
        if node.data == "ident_arg":
            names.add(str(node.children[0]))
        elif node.data == "member_dot_arg":
            names.add(str(node.children[1]))
    return names


def _identifiers(ast: lark.Tree[lark.Token]) -> set[str]:
    return {str(node.children[0]) for node in ast.iter_subtrees() if node.data == "ident"}


# -- CEL values -------------------------------------------------------------------------------
# Kubernetes' CEL names for properties that are CEL keywords or hold characters CEL identifiers
# cannot (k8s.io/apiserver/pkg/cel/escaping.go): ``namespace`` is reached as ``__namespace__``.
_CEL_RESERVED = frozenset(
    {
        "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
        "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
        "void", "while",
    }
)  # fmt: skip
_CEL_ESCAPES = {"__": "__underscores__", ".": "__dot__", "-": "__dash__", "/": "__slash__"}
_CEL_ESCAPABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")


def cel_property_name(name: str) -> str | None:
    """Return the name a CEL rule uses for an object property, or None if it has none.

    Args:
        name: the property name in the document.

    Returns:
        ``__keyword__`` for CEL keywords, ``__`` / ``.`` / ``-`` / ``/`` spelled out as
        ``__underscores__``, ``__dot__``, ``__dash__``, ``__slash__``; None for names Kubernetes
        cannot expose to CEL (they start with a digit or hold other characters).
    """
    if name in _CEL_RESERVED:
        return f"__{name}__"
    if not _CEL_ESCAPABLE.fullmatch(name):
        return None
    return re.sub(r"__|[./-]", lambda match: _CEL_ESCAPES[match.group(0)], name)


def to_cel(schema: Mapping[str, object], value: object) -> celtypes.Value:
    """Convert a JSON value to CEL, shaped by its schema as the API server does.

    Properties of an object with declared ``properties`` are renamed with
    ``cel_property_name``; the keys of a map (``additionalProperties``) stay as they are.
    Strings stay strings whatever their ``format`` (the server turns ``date-time`` into a
    timestamp, but only ``status`` has one, and a renderer never writes status).
    """
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        if isinstance(properties, dict):
            fields: dict[celtypes.Value, celtypes.Value] = {}
            for key, item in value.items():
                cel_name = cel_property_name(str(key))
                if cel_name is not None:
                    fields[celtypes.StringType(cel_name)] = to_cel(
                        _mapping(properties.get(key)), item
                    )
            return celtypes.MapType(fields)
        if isinstance(extra, dict):
            return celtypes.MapType(
                {celtypes.StringType(str(key)): to_cel(extra, item) for key, item in value.items()}
            )
    if isinstance(value, list):
        items = _mapping(schema.get("items"))
        return celtypes.ListType([to_cel(items, item) for item in value])
    if value is None or isinstance(value, dict | bool | int | float | str):
        return json_to_cel(value)
    raise TypeError(f"not a JSON value: {value!r}")


# -- Kubernetes CEL library functions celpy lacks ---------------------------------------------
def _split(
    text: celtypes.StringType, separator: celtypes.StringType, limit: object = None
) -> celtypes.ListType:
    """``<string>.split(<string>[, <int>])`` from the Kubernetes strings library (Go's SplitN).

    A limit below zero (or none) splits everywhere, zero returns an empty list, and ``n`` returns
    at most ``n`` parts, the last holding the rest. An empty separator splits into characters.
    """
    count = -1 if limit is None else int(str(limit))
    if count == 0:
        return celtypes.ListType([])
    if separator == "":
        parts = list(str(text))
        if 0 < count < len(parts):
            parts = [*parts[: count - 1], "".join(parts[count - 1 :])]
    else:
        parts = str(text).split(str(separator), count - 1 if count > 0 else -1)
    return celtypes.ListType([celtypes.StringType(part) for part in parts])


# Functions the Kubernetes CEL environment adds to standard CEL and the vendored CRDs call
# (``_compile_rule`` refuses a rule that calls anything outside celpy's functions and these).
KUBERNETES_CEL_FUNCTIONS: dict[str, CELFunction] = {"split": _split}
