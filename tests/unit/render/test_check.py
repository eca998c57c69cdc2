"""Offline validation of rendered Kubernetes documents (``orchestrator.render.check``).

Every CEL rule of the vendored Gateway API CRDs must compile and evaluate (a rule we cannot
evaluate fails here instead of passing every object), real violations are caught by the layer
that owns them (schema, list type, CEL, metadata, kubernetes-validate), and correct hand-written
objects pass.
"""

from __future__ import annotations

import copy
import functools
import importlib
import re
import sys
from collections.abc import Iterator, Mapping
from importlib import resources

import pytest
import yaml

from orchestrator.errors import OrchestratorError
from orchestrator.render import check

# -- hand-written objects a cluster accepts ---------------------------------------------------
GATEWAY: dict[str, object] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "site", "namespace": "web", "labels": {"app.kubernetes.io/name": "site"}},
    "spec": {
        "gatewayClassName": "eg",
        "listeners": [
            {"name": "http", "protocol": "HTTP", "port": 80, "hostname": "example.com"},
            {
                "name": "https",
                "protocol": "HTTPS",
                "port": 443,
                "hostname": "example.com",
                "tls": {"certificateRefs": [{"kind": "Secret", "name": "site-tls"}]},
            },
        ],
    },
}
HTTPROUTE: dict[str, object] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "api", "namespace": "web"},
    "spec": {
        "parentRefs": [{"name": "site", "namespace": "web", "sectionName": "https"}],
        "hostnames": ["example.com"],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/api/"}}],
                "backendRefs": [{"name": "api", "port": 8080}],
                "timeouts": {"request": "30s"},
            }
        ],
    },
}
DEPLOYMENT: dict[str, object] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "api", "namespace": "web", "labels": {"app": "api"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "api"}},
        "template": {
            "metadata": {"labels": {"app": "api"}},
            "spec": {
                "serviceAccountName": "api",
                "terminationGracePeriodSeconds": 30,
                "containers": [
                    {
                        "name": "api",
                        "image": "registry.example.com/api:1.0",
                        "args": ["worker", "--listen", "0.0.0.0:8080"],
                        "workingDir": "/srv/api",
                        "env": [{"name": "MODE", "value": "production"}],
                        "ports": [{"containerPort": 8080, "name": "http"}],
                        "resources": {"limits": {"memory": "256Mi", "cpu": "500m"}},
                        "readinessProbe": {"httpGet": {"path": "/health", "port": 8080}},
                        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}},
                        "startupProbe": {
                            "httpGet": {"path": "/health", "port": 8080},
                            "failureThreshold": 30,
                            "periodSeconds": 1,
                        },
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 10001,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                    }
                ],
            },
        },
    },
}
SERVICE: dict[str, object] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "api", "namespace": "web"},
    "spec": {"selector": {"app": "api"}, "ports": [{"port": 8080, "targetPort": 8080}]},
}
NETWORK_POLICY: dict[str, object] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "api", "namespace": "web"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "api"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"podSelector": {"matchLabels": {"gateway": "site"}}}],
                "ports": [{"port": 8080, "protocol": "TCP"}],
            }
        ],
    },
}
SERVICE_ACCOUNT: dict[str, object] = {
    "apiVersion": "v1",
    "kind": "ServiceAccount",
    "metadata": {"name": "api", "namespace": "web"},
    "automountServiceAccountToken": False,
}
REFERENCE_GRANT: dict[str, object] = {
    "apiVersion": "gateway.networking.k8s.io/v1beta1",
    "kind": "ReferenceGrant",
    "metadata": {"name": "routes", "namespace": "web"},
    "spec": {
        "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "edge"}],
        "to": [{"group": "", "kind": "Service"}],
    },
}
GATEWAY_CLASS: dict[str, object] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "GatewayClass",
    "metadata": {"name": "eg"},
    "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"},
}
VALID = [
    GATEWAY_CLASS,
    GATEWAY,
    HTTPROUTE,
    DEPLOYMENT,
    SERVICE,
    NETWORK_POLICY,
    SERVICE_ACCOUNT,
    REFERENCE_GRANT,
]


def edited(doc: dict[str, object], path: str, value: object) -> dict[str, object]:
    """A deep copy of ``doc`` with the value at dotted ``path`` (``[i]`` for list items) replaced."""
    result = copy.deepcopy(doc)
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    node: object = result
    for part in parts[:-1]:
        node = node[part]  # type: ignore[index]
    node[parts[-1]] = value  # type: ignore[index]
    return result


# -- every vendored rule compiles and evaluates -----------------------------------------------
@functools.cache
def vendored_crds() -> list[dict[str, object]]:
    """The CRDs as installed with the package (read independently of the module under test)."""
    directory = resources.files("orchestrator.render").joinpath(
        "crds", f"gateway-api-{check.GATEWAY_API_VERSION}"
    )
    return [
        yaml.safe_load(directory.joinpath(name).read_text("utf-8"))
        for name in (
            "gatewayclasses.yaml",
            "gateways.yaml",
            "httproutes.yaml",
            "referencegrants.yaml",
        )
    ]


def rule_sites(schema: Mapping[str, object]) -> Iterator[tuple[Mapping[str, object], dict]]:
    """Yield (schema node, validation) for every ``x-kubernetes-validations`` entry."""
    for validation in schema.get("x-kubernetes-validations", []):  # type: ignore[attr-defined]
        yield schema, validation
    for sub in schema.get("properties", {}).values():  # type: ignore[attr-defined]
        yield from rule_sites(sub)
    for keyword in ("items", "additionalProperties"):
        sub = schema.get(keyword)
        if isinstance(sub, dict):
            yield from rule_sites(sub)


def served_schemas() -> Iterator[tuple[str, Mapping[str, object]]]:
    for crd in vendored_crds():
        for version in crd["spec"]["versions"]:  # type: ignore[index]
            if version["served"]:
                yield (
                    f"{crd['spec']['names']['kind']}/{version['name']}",  # type: ignore[index]
                    version["schema"]["openAPIV3Schema"],
                )


def test_the_vendored_crds_hold_every_kind_and_served_version() -> None:
    """The loader indexes the four kinds in both served versions, and the rules of each."""
    crds = check._gateway_api_crds()
    assert {f"{kind}/{version}" for kind, version in crds} == {k for k, _ in served_schemas()}
    assert {
        "Gateway/v1",
        "Gateway/v1beta1",
        "HTTPRoute/v1",
        "HTTPRoute/v1beta1",
        "GatewayClass/v1",
        "GatewayClass/v1beta1",
        "ReferenceGrant/v1",
        "ReferenceGrant/v1beta1",
    } == {f"{kind}/{version}" for kind, version in crds}


def test_every_vendored_rule_compiles_with_functions_we_implement() -> None:
    """All 212 rules compile, and every function they call exists (celpy's or ours)."""
    environment = check.celpy.Environment()
    texts = []
    for _, schema in served_schemas():
        for _, validation in rule_sites(schema):
            texts.append(validation["rule"])
            check._compile_rule(environment, validation)
    assert 212 == len(texts)
    loaded = {text for crd in check._gateway_api_crds().values() for text in crd.rules}
    assert set(texts) == loaded


def test_only_the_rules_that_read_oldself_are_transition_rules() -> None:
    """Transition rules are skipped on create (as the server does); nothing else is skipped."""
    rules = {
        text: rule for crd in check._gateway_api_crds().values() for text, rule in crd.rules.items()
    }
    assert {"self == oldSelf"} == {text for text, rule in rules.items() if rule.transition}
    assert all(("oldSelf" in text) == rule.transition for text, rule in rules.items())


def test_a_rule_calling_a_function_we_lack_is_refused_at_load() -> None:
    """A new CRD release that uses an unimplemented function fails loudly, not silently passes."""
    with pytest.raises(ValueError, match=r"lowerAscii"):
        check._compile_rule(check.celpy.Environment(), {"rule": "self.lowerAscii() == 'a'"})


STRING_CANDIDATES = (
    "/",
    "example.com",
    "https://example.com",
    "a",
    "1s",
    "Service",
    "10.0.0.1",
    "http",
    "A",
)


def example(schema: Mapping[str, object]) -> object:
    """A value for ``schema`` with every property present, so every ``has()`` branch is reached."""
    kind = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        return 1
    if kind == "object" or "properties" in schema:
        properties: Mapping[str, Mapping[str, object]] = schema.get("properties", {})  # type: ignore[assignment]
        if properties:
            return {key: example(sub) for key, sub in properties.items()}
        extra = schema.get("additionalProperties")
        return {"example.com/key": example(extra)} if isinstance(extra, dict) else {}
    if kind == "array":
        return [example(schema["items"])]  # type: ignore[arg-type]
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]  # type: ignore[index]
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))  # type: ignore[call-overload]
    if kind == "boolean":
        return True
    assert "string" == kind, schema
    pattern = str(schema.get("pattern", ""))
    for text in STRING_CANDIDATES:
        if len(text) >= int(schema.get("minLength", 0)) and re.search(pattern, text):  # type: ignore[call-overload]
            return text
    raise AssertionError(f"no example string for {schema}")


def test_every_vendored_rule_evaluates_to_a_bool() -> None:
    """Each rule but the 2 transition rules, bound to a value with every field set, yields a bool.

    A rule that errors (an unknown function or overload, a conversion celpy lacks) is listed.
    """
    environment = check.celpy.Environment()
    evaluated, failures = 0, []
    for name, schema in served_schemas():
        for node, validation in rule_sites(schema):
            rule = check._compile_rule(environment, validation)
            if rule.transition:
                continue
            try:
                result = rule.program.evaluate({"self": check.to_cel(node, example(node))})
            except check.CELEvalError as error:
                result = error
            if not isinstance(result, check.celtypes.BoolType):
                failures.append((name, rule.text, result))
            evaluated += 1
    assert [] == failures
    assert 210 == evaluated


# -- the Kubernetes CEL functions we add ------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'a/b/c'.split('/')", ["a", "b", "c"]),
        ("'a/b/c'.split('/', -1)", ["a", "b", "c"]),
        ("'a/b/c'.split('/', 0)", []),
        ("'a/b/c'.split('/', 1)", ["a/b/c"]),
        ("'a/b/c'.split('/', 2)", ["a", "b/c"]),
        ("'abc'.split('')", ["a", "b", "c"]),
        ("'abc'.split('', 2)", ["a", "bc"]),
        ("'no-slash'.split('/')[0].size()", 8),
    ],
)
def test_split_follows_the_kubernetes_strings_library(expression: str, expected: object) -> None:
    """``split`` behaves as Go's strings.SplitN, which the Kubernetes library wraps."""
    environment = check.celpy.Environment()
    program = environment.program(
        environment.compile(expression), functions=check.KUBERNETES_CEL_FUNCTIONS
    )
    assert expected == program.evaluate({})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("port", "port"),
        ("namespace", "__namespace__"),
        ("if", "__if__"),
        ("a__b", "a__underscores__b"),
        ("x-y.z/w", "x__dash__y__dot__z__slash__w"),
        ("1abc", None),
        ("a b", None),
    ],
)
def test_property_names_are_escaped_as_kubernetes_does(name: str, expected: str | None) -> None:
    """Keywords and special characters get Kubernetes' CEL spelling; unusable names none."""
    assert expected == check.cel_property_name(name)


# -- violations, each caught by the layer that owns it ----------------------------------------
def problems(*docs: dict[str, object]) -> list[str]:
    return check.check_documents(list(docs))


def test_hand_written_objects_of_every_rendered_kind_pass() -> None:
    """GatewayClass (its transition rule is not run on create), Gateway, HTTPRoute, ReferenceGrant
    (v1beta1), Deployment, Service, NetworkPolicy and ServiceAccount."""
    assert [] == problems(*VALID)


def test_a_v1beta1_httproute_is_checked_against_the_v1beta1_schema() -> None:
    """The served version named by apiVersion is the one used."""
    assert [] == problems(edited(HTTPROUTE, "apiVersion", "gateway.networking.k8s.io/v1beta1"))


def test_a_path_prefix_not_starting_with_a_slash_fails_its_cel_rule() -> None:
    doc = edited(HTTPROUTE, "spec.rules[0].matches[0].path.value", "api")
    assert [
        "HTTPRoute/api: spec.rules[0].matches[0].path: value must be an absolute path and start"
        " with '/' when type one of ['Exact', 'PathPrefix']"
    ] == problems(doc)


def test_two_listeners_with_one_name_fail_the_list_key_and_the_cel_rule() -> None:
    """The server reports both: the listener list's map key, and the uniqueness rule."""
    listeners = GATEWAY["spec"]["listeners"]  # type: ignore[index]
    doc = edited(GATEWAY, "spec.listeners[1].name", listeners[0]["name"])  # type: ignore[index]
    assert [
        'Gateway/site: spec.listeners[1]: Duplicate value: {"name": "http"}',
        "Gateway/site: spec.listeners: Listener name must be unique within the Gateway",
    ] == problems(doc)


def test_an_unknown_field_in_an_httproute_is_an_error() -> None:
    doc = edited(HTTPROUTE, "spec.rules[0].matches[0].path.caseInsensitive", True)
    assert [
        "HTTPRoute/api: spec.rules[0].matches[0].path: Additional properties are not allowed"
        " ('caseInsensitive' was unexpected)"
    ] == problems(doc)


def test_an_unknown_metadata_field_in_a_gateway_is_an_error() -> None:
    """A CRD's schema leaves metadata open; ObjectMeta does not."""
    doc = edited(GATEWAY, "metadata.label", {"a": "b"})
    assert [
        "Gateway/site: metadata: unknown field 'label' (not a field of ObjectMeta)"
    ] == problems(doc)


def test_defaults_apply_before_the_rules_run() -> None:
    """A backendRef's kind defaults to Service, whose reference needs a port."""
    doc = edited(HTTPROUTE, "spec.rules[0].backendRefs", [{"name": "api"}])
    assert [
        "HTTPRoute/api: spec.rules[0].backendRefs[0]: Must have port for Service reference"
    ] == problems(doc)


def test_parent_namespaces_are_seen_by_the_rules_under_their_escaped_name() -> None:
    """``namespace`` is ``__namespace__`` in CEL: two parents in two namespaces are distinct."""
    two_namespaces = [{"name": "site", "namespace": "web"}, {"name": "site", "namespace": "edge"}]
    assert [] == problems(edited(HTTPROUTE, "spec.parentRefs", two_namespaces))
    one_namespace = [{"name": "site", "namespace": "web"}, {"name": "site", "namespace": "web"}]
    assert [
        "HTTPRoute/api: spec.parentRefs: sectionName must be unique when parentRefs includes 2 or"
        " more references to the same parent"
    ] == problems(edited(HTTPROUTE, "spec.parentRefs", one_namespace))


def test_a_wrong_type_in_a_gateway_is_reported_without_rule_noise() -> None:
    """A type error stops the rules, as on the server: they assume the schema's types."""
    doc = edited(GATEWAY, "spec.listeners[0].port", "80")
    assert ["Gateway/site: spec.listeners[0].port: '80' is not of type 'integer'"] == problems(doc)


def test_a_kind_or_version_not_vendored_is_named() -> None:
    route = edited(HTTPROUTE, "kind", "GRPCRoute")
    old = edited(HTTPROUTE, "apiVersion", "gateway.networking.k8s.io/v1alpha2")
    assert [
        "GRPCRoute/api: (document): kind GRPCRoute is not in the Gateway API v1.6.1 standard channel",
        "HTTPRoute/api: (document): gateway.networking.k8s.io/v1alpha2 is not served for HTTPRoute"
        " (served: ['v1', 'v1beta1'])",
    ] == problems(route, old)


def test_a_deployment_with_an_unknown_field_fails_strict_validation() -> None:
    doc = edited(DEPLOYMENT, "spec.template.spec.containers[0].workdir", "/srv")
    [problem] = problems(doc)
    assert problem.startswith("Deployment/api: spec.template.spec.containers[0]: ")
    assert "'workdir' was unexpected" in problem


def test_a_deployment_with_a_wrong_type_fails() -> None:
    doc = edited(DEPLOYMENT, "spec.replicas", "2")
    assert ["Deployment/api: spec.replicas: '2' is not of type 'integer', 'null'"] == problems(doc)


def test_an_unknown_core_kind_is_named() -> None:
    doc = edited(SERVICE, "kind", "Servise")
    assert [
        "Servise/api: (document): no schema for kind Servise in v1 (Kubernetes 1.37)"
    ] == problems(doc)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            edited(SERVICE, "metadata.name", "1api"),
            "Service/1api: metadata.name: '1api' is not a valid DNS-1035 label"
            " ([a-z]([-a-z0-9]*[a-z0-9])?, at most 63 characters)",
        ),
        (
            edited(HTTPROUTE, "metadata.name", "Api"),
            "HTTPRoute/Api: metadata.name: 'Api' is not a valid DNS-1123 subdomain"
            " (lowercase, at most 253 characters)",
        ),
        (
            edited(DEPLOYMENT, "metadata.namespace", "web.site"),
            "Deployment/api: metadata.namespace: 'web.site' is not a valid DNS-1123 label"
            " ([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters)",
        ),
        (
            edited(SERVICE_ACCOUNT, "metadata.labels", {"app": "a b"}),
            "ServiceAccount/api: metadata.labels.app: 'a b' is not a valid label value",
        ),
        (
            edited(GATEWAY, "metadata.annotations", {"-bad": "x"}),
            "Gateway/site: metadata.annotations: '-bad' is not a valid key ([prefix/]name, name at"
            " most 63)",
        ),
        (
            edited(NETWORK_POLICY, "metadata", {"namespace": "web"}),
            "NetworkPolicy #1: metadata.name: a name (string) is required",
        ),
    ],
)
def test_metadata_names_and_labels_follow_the_api_server_rules(
    doc: dict[str, object], expected: str
) -> None:
    assert [expected] == problems(doc)


def test_a_rule_that_errors_at_runtime_is_a_problem_not_a_pass() -> None:
    """An evaluation error fails the object, as on the server."""
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    rule = check._compile_rule(check.celpy.Environment(), {"rule": "self.b == 'x'"})
    [(path, why)] = check._evaluate(rule, schema, {"a": "x"}, ("spec",))
    assert ("spec",) == path
    assert why.startswith("rule \"self.b == 'x'\" could not be evaluated: no such member")


@pytest.mark.parametrize(
    ("validation", "expected"),
    [
        ({"rule": "self.a == 'y'"}, "failed rule: self.a == 'y'"),
        ({"rule": "self.a == 'y'", "message": "a must be y"}, "a must be y"),
        (
            {"rule": "self.a == 'y'", "message": "m", "messageExpression": "'a is ' + self.a"},
            "a is x",
        ),
        ({"rule": "self.a == 'y'", "message": "m", "messageExpression": "self.b"}, "m"),
    ],
)
def test_a_failed_rule_reports_its_message_as_the_api_server_would(
    validation: dict[str, object], expected: str
) -> None:
    """messageExpression, else message, else ``failed rule: RULE``."""
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    rule = check._compile_rule(check.celpy.Environment(), validation)
    assert [((), expected)] == list(check._evaluate(rule, schema, {"a": "x"}, ()))


def test_without_the_optional_extra_the_check_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The module imports without cel-python; asking for a check names the extra to install."""
    import orchestrator.render

    # Restored at teardown, so later tests see the real module again.
    monkeypatch.setattr(orchestrator.render, "check", check)
    monkeypatch.setitem(sys.modules, "celpy", None)
    monkeypatch.delitem(sys.modules, "orchestrator.render.check")
    without = importlib.import_module("orchestrator.render.check")
    with pytest.raises(OrchestratorError) as info:
        without.check_documents([SERVICE])
    assert "pip install 'orchestrator[kubernetes]'" in info.value.detail
