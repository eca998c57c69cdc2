"""The Linux backend: queues as listening Unix sockets, least-privilege workers, cgroups, a broker.

Owns: everything the controller does to a Linux host — binding sockets, creating users, spawning and
supervising processes, writing cgroupfs, the open-by-name broker and the listener process. Imports
``model``, ``plan``, ``supervise``, ``errors``; never ``controller`` or ``cli``.
"""
