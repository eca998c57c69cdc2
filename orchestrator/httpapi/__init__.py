"""The HTTP Server API v2 through ctypes, used by both the http.sys backend and the worker runner.

Modules, bottom up: ``_ffi`` (the only one that loads Windows DLLs: types, structs, constants,
prototypes, ``HttpApiError``), ``binding`` (the ``HttpSysBinding`` protocol and ``RealBinding``),
``handles`` (closeable session, URL group and queue objects), ``queue_open`` (Create / Attach /
CreateOrAttach), ``capabilities`` (Windows versus Wine) and ``worker`` (receive and respond on a queue
handle). The controller side (``backends.httpsys``) creates sessions, URL groups and queues; the
worker side (``runner.httpsys_source``) attaches to a queue and serves it.
Imports nothing else from ``orchestrator`` (``.importlinter``: a layer just above ``model``), so the
runner can use it without importing a backend. Importing the package loads no DLL, so it is safe on
Linux, where the structure layouts are unit-tested.
"""
