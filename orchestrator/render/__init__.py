"""Renderers: pure functions from the model to documents for other platforms, plus warnings.

Owns: ``render_kubernetes`` (``kubernetes``), the precedence comparison (``precedence``), the YAML form
of rendered documents (``dump_yaml``) and their file names (``file_names``). ``check`` validates
rendered documents offline against the real schemas; it is imported only by ``render --check``, since
its dependencies are an optional extra.
Pure: standard library, PyYAML, ``orchestrator.model``, ``orchestrator.routing`` and
``orchestrator.errors``. Must not import os, socket, subprocess, threading, logging, time or asyncio,
nor a backend: a renderer never talks to a host or a cluster (the CLI writes the files).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import yaml

from orchestrator.render.kubernetes import Rendering, render_kubernetes

__all__ = ["Rendering", "dump_yaml", "file_names", "render_kubernetes"]


class _Dumper(yaml.SafeDumper):
    """Never writes anchors and aliases (``&id001``): a document that shares a value twice, as a
    readiness and a liveness probe may, is written out in full, as kubectl and people expect."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def dump_yaml(documents: Sequence[Mapping[str, object]]) -> str:
    """One multi-document YAML stream (each document starts with ``---``), keys in render order."""
    return yaml.dump_all(
        [dict(d) for d in documents],
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        explicit_start=True,
        width=100,
    )


def file_names(documents: Sequence[Mapping[str, object]]) -> list[str]:
    """The file each document is written to with ``render -o DIR``: ``kind-name.yaml`` (kind in
    lowercase); ``kind-namespace-name.yaml`` where two namespaces hold a kind and name alike."""

    def parts(doc: Mapping[str, object]) -> tuple[str, str, str]:
        meta = doc.get("metadata")
        assert isinstance(meta, Mapping)
        return str(doc["kind"]).lower(), str(meta.get("namespace", "")), str(meta["name"])

    short = Counter((kind, name) for kind, _, name in map(parts, documents))
    out = []
    for kind, namespace, name in map(parts, documents):
        if short[(kind, name)] > 1:
            out.append(f"{kind}-{namespace}-{name}.yaml")
        else:
            out.append(f"{kind}-{name}.yaml")
    return out
