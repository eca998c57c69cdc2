"""The HTTP.sys backend: plan steps applied to http.sys, and worker pools supervised as processes.

Modules: ``backend`` (``HttpSysBackend``: observe/apply dispatch and worker-pool supervision),
``resources`` (server sessions, request queues and URL groups: create, update, rebind, tear down),
``routes`` (the route id each URL carries as its UrlContext), ``servicestate`` (the
``netsh http show servicestate`` parser), ``launcher`` (starting worker processes; the HTTP health
probe) and ``sddl`` (queue DACLs). The HTTP Server API itself (ctypes, handles, queue opening) is
``orchestrator.httpapi``, which the worker runner uses too; the in-memory http.sys the tests drive
the backend with is ``tests/support/httpsys_fake.py``.
Importing this package imports nothing else and loads no DLL, so it is safe on Linux. Nothing outside
``orchestrator.backends`` imports it (``backends.registry`` does, lazily).
"""
