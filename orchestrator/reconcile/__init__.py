"""The reconcile loop: observe → diff → apply → re-observe, level-triggered, with backoff.

Owns: ``Reconciler`` (controller-runtime's contract: ``reconcile_once(desired) -> Result``), the
coalescing ``Trigger``, per-object ``Backoff``, the event log, the manifest bookkeeping
(last-known-good and failed hashes) and ``Rollout`` (apply a manifest with rollback to the last good
one). Must not import ``controller`` or ``cli``.
"""
