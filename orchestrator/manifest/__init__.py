"""Loading manifests: files → YAML → JSON Schema → semantic checks → ``DesiredState``.

Owns: reading a manifest file or directory, hashing the set, mapping every problem to file, line,
column and JSON path, and building the normalised model.
Must not import ``plan``, ``supervise``, ``reconcile``, ``backends``, ``controller`` or ``cli``.
"""

from orchestrator.manifest.load import LoadedManifest, load_manifest, read_manifest_set, untrusted

__all__ = ["LoadedManifest", "load_manifest", "read_manifest_set", "untrusted"]
