"""Building desired and live states in tests: small constructors and hypothesis strategies."""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from hypothesis import strategies as st

from orchestrator.model import (
    DesiredState,
    EnvVar,
    Fault,
    Key,
    Kind,
    LiveState,
    Principal,
    RequestQueue,
    Resource,
    Session,
    UrlGroup,
    WorkerPool,
)
from orchestrator.model.desired import PrincipalKind

S = Key(Kind.SESSION, "main")


def session(**kw: object) -> Session:
    return Session(key=S, **kw)  # type: ignore[arg-type]


def queue(name: str, **kw: object) -> RequestQueue:
    return RequestQueue(key=Key(Kind.QUEUE, name), session=S, **kw)  # type: ignore[arg-type]


def group(name: str, q: str, *urls: str, **kw: object) -> UrlGroup:
    return UrlGroup(
        key=Key(Kind.URLGROUP, name),
        session=S,
        queue=Key(Kind.QUEUE, q),
        urls=tuple(sorted(urls)),
        **kw,  # type: ignore[arg-type]
    )


def pool(name: str, q: str, *command: str, **kw: object) -> WorkerPool:
    return WorkerPool(
        key=Key(Kind.WORKER, name),
        session=S,
        queue=Key(Kind.QUEUE, q),
        command=command or ("app",),
        **kw,  # type: ignore[arg-type]
    )


def desired(*resources: Resource, sha: str = "d" * 64) -> DesiredState:
    return DesiredState.of({r.key: r for r in resources}, sha)


def live(
    *resources: Resource,
    applied: Iterable[Resource] | None = None,
    faults: Iterable[Fault] = (),
    backend: str = "fake",
) -> LiveState:
    res = {r.key: r for r in resources}
    app = {r.key: r for r in applied} if applied is not None else dict(res)
    return LiveState(
        resources=MappingProxyType(res),
        applied=MappingProxyType(app),
        faults=tuple(faults),
        backend=backend,
    )


def site(app_command: str = "app") -> DesiredState:
    """A small realistic desired state: two queues, two groups, two pools."""
    return desired(
        session(),
        queue("api"),
        queue("web"),
        group("api", "api", "http://+:8080/api/"),
        group("web", "web", "http://+:8080/"),
        pool("api", "api", app_command),
        pool("web", "web", "web"),
    )


NAMES = st.sampled_from(["a", "b", "c", "d", "e"])


@st.composite
def states(draw: st.DrawFn) -> DesiredState:
    """Random, internally consistent desired states (references always resolve)."""
    resources: list[Resource] = []
    if draw(st.booleans()):
        resources.append(
            session(
                backend=draw(st.sampled_from(["auto", "linux"])),
            )
        )
    else:
        return desired(sha=draw(st.sampled_from(["1" * 64, "2" * 64])))
    qnames = draw(st.sets(NAMES, max_size=4))
    for name in sorted(qnames):
        acl = draw(st.one_of(st.none(), st.just((Principal(kind=PrincipalKind.USER, name="u"),))))
        resources.append(queue(name, max_length=draw(st.sampled_from([10, 1000])), acl=acl))
    for name in sorted(qnames):
        if draw(st.booleans()):
            path = draw(st.sampled_from(["/", "/x/", "/y/"]))
            resources.append(group(f"g{name}", name, f"http://+:80{path}{name}/"))
        if draw(st.booleans()):
            resources.append(
                pool(
                    f"p{name}",
                    name,
                    draw(st.sampled_from(["app", "app2"])),
                    processes=draw(st.integers(1, 3)),
                    env=draw(
                        st.sampled_from([(), (EnvVar(name="TOKEN", value="s1", secret=True),)])
                    ),
                )
            )
    if qnames and draw(st.booleans()):
        # a pool pointing at another queue than its name suggests: exercises queue moves
        target = draw(st.sampled_from(sorted(qnames)))
        resources.append(pool("moving", target, "m"))
    return desired(*resources, sha=draw(st.sampled_from(["1" * 64, "2" * 64])))
