"""Backends: the only code that touches sockets, processes, users and ``httpapi.dll``.

Owns: the backend protocol (``base``), the lazy registry, and the fake, linux and httpsys backends,
which are mutually independent. Nothing imports a backend module except ``backends.registry``.
"""
