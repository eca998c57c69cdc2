"""The typed, frozen, normalised state the product reasons about.

Owns: keys, resources, desired and live state, units and URL prefixes.
Pure: imports nothing but the standard library and ``orchestrator.errors``; no I/O, no time.
"""

from orchestrator.model.desired import (
    Backend,
    DesiredState,
    EnvVar,
    Health,
    KubernetesPool,
    KubernetesSettings,
    ListenerSettings,
    Metrics,
    Principal,
    RapidFail,
    Recycling,
    RequestQueue,
    Resource,
    ResourceLimits,
    RestartPolicy,
    Session,
    SessionLimits,
    State,
    TimeoutOverrides,
    Timeouts,
    TlsBinding,
    UrlGroup,
    Verbosity503,
    WorkerPool,
)
from orchestrator.model.ids import KIND_RANK, Key, Kind
from orchestrator.model.live import Fault, LiveState, Repair

__all__ = [
    "KIND_RANK",
    "Backend",
    "DesiredState",
    "EnvVar",
    "Fault",
    "Health",
    "Key",
    "Kind",
    "ListenerSettings",
    "Metrics",
    "LiveState",
    "Principal",
    "RapidFail",
    "Recycling",
    "Repair",
    "RequestQueue",
    "Resource",
    "ResourceLimits",
    "RestartPolicy",
    "Session",
    "SessionLimits",
    "State",
    "TimeoutOverrides",
    "Timeouts",
    "TlsBinding",
    "UrlGroup",
    "Verbosity503",
    "WorkerPool",
    "KubernetesPool",
    "KubernetesSettings",
]
