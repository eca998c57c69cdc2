"""What the HTTP Server API can do on this host: full on Windows, reduced under Wine 8.

Owns: ``HttpSysCapabilities``, ``capabilities_for`` (pure: a Wine version or ``None`` in, the record
out) and ``detect_capabilities`` (asks ``_ffi`` whether this is Wine and which optional functions are
exported). The http.sys backend and the worker runner consult these before every call that is
unsupported, or would abort the process, under Wine (notes/httpsys-backend.md section 5.2), instead of
catching 120 after the fact. ``features()`` speaks the vocabulary of ``backends.base.Capabilities``
(as strings: this module does not import it).
Imports ``_ffi`` lazily (only ``detect_capabilities`` needs the DLLs) and nothing else from
``orchestrator``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HttpSysCapabilities", "capabilities_for", "detect_capabilities"]


@dataclass(frozen=True, slots=True)
class HttpSysCapabilities:
    """Which parts of the HTTP Server API work here."""

    #: ``None`` on real Windows, else Wine's version string (``"8.0"``).
    wine_version: str | None
    #: Queue names and OPEN_EXISTING work (Attach by name across processes). Under Wine a name is
    #: ignored and OPEN_EXISTING yields a dead queue: workers need an inherited handle instead.
    named_queues: bool
    #: QueueLength, State and 503Verbosity can be set on a queue.
    queue_properties: bool
    #: Timeouts, connection limits and State on sessions and URL groups.
    group_properties: bool
    #: The Query*Property calls are safe (under Wine they abort the process).
    query_properties: bool
    #: URLs one URL group may hold; ``None`` for no limit (Wine: one per group).
    urls_per_group: int | None
    #: ``HTTP_URL_FLAG_REMOVE_ALL`` is honoured.
    remove_all_urls: bool
    https: bool
    ipv6: bool
    #: ``HttpShutdownRequestQueue`` (overlapped recycle) exists.
    shutdown_queue: bool
    #: ``HttpWaitForDemandStart`` exists.
    demand_start: bool
    #: ``HttpDelegateRequestEx`` is exported (Windows 10 19043+ / Server 2022).
    delegation: bool
    #: ``HttpSendResponseEntityBody`` streams (Wine: one ``HttpSendHttpResponse`` with the body).
    streamed_responses: bool
    #: The queue DACL decides who may open a queue by name.
    queue_acl: bool
    #: ``HTTP_MULTIPLE_KNOWN_HEADERS`` response info is honoured (a known header sent more than
    #: once, as ``Set-Cookie`` must be). Wine 8 ignores response info but writes a known header's
    #: name given as an unknown header verbatim, so repeats go there instead.
    multiple_known_headers: bool

    @property
    def is_wine(self) -> bool:
        """Whether this is Wine rather than Windows."""
        return self.wine_version is not None

    def features(self) -> frozenset[str]:
        """Feature names as ``backends.base.Capabilities.features`` spells them."""
        names = {
            "queue_state": self.queue_properties,
            "verbosity503": self.queue_properties,
            "queue_length": self.queue_properties,
            "https": self.https,
            "urls_per_group_many": self.urls_per_group is None,
            "acl": self.queue_acl,
        }
        return frozenset(name for name, ok in names.items() if ok)

    def notes(self) -> tuple[str, ...]:
        """Human explanations of what is missing, for ``orchestrator status``."""
        if not self.is_wine:
            return ()
        return (
            f"Wine {self.wine_version}: queue names and OPEN_EXISTING are ignored; workers get the "
            "queue by inherited handle",
            "no queue length, state or 503 verbosity; no timeouts or connection limits",
            "one URL per URL group; no https; IPv4 only; unmatched requests hang instead of 404",
        )


def capabilities_for(wine_version: str | None, *, delegation: bool = False) -> HttpSysCapabilities:
    """The capabilities of Windows (``wine_version=None``) or of the given Wine version.

    Args:
        wine_version: from ``_ffi.wine_version()``.
        delegation: whether ``HttpDelegateRequestEx`` is exported (never under Wine).
    """
    if wine_version is None:
        return HttpSysCapabilities(
            wine_version=None,
            named_queues=True,
            queue_properties=True,
            group_properties=True,
            query_properties=True,
            urls_per_group=None,
            remove_all_urls=True,
            https=True,
            ipv6=True,
            shutdown_queue=True,
            demand_start=True,
            delegation=delegation,
            streamed_responses=True,
            queue_acl=True,
            multiple_known_headers=True,
        )
    return HttpSysCapabilities(
        wine_version=wine_version,
        named_queues=False,
        queue_properties=False,
        group_properties=False,
        query_properties=False,
        urls_per_group=1,
        remove_all_urls=False,
        https=False,
        ipv6=False,
        shutdown_queue=False,
        demand_start=False,
        delegation=False,
        streamed_responses=False,
        queue_acl=False,
        multiple_known_headers=False,
    )


def detect_capabilities() -> HttpSysCapabilities:
    """Probe this process: Wine or Windows, and whether delegation is exported.

    Raises:
        UnsupportedPlatformError: not on Windows.
    """
    from orchestrator.httpapi import _ffi  # lazy: loads ntdll/httpapi

    wine = _ffi.wine_version()
    delegation = wine is None and _ffi.load().HttpDelegateRequestEx is not None
    return capabilities_for(wine, delegation=delegation)
