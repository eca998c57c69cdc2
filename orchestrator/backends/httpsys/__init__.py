"""The HTTP.sys backend's lower layer: ctypes over ``httpapi.dll`` and the objects built on it.

Modules, bottom up: ``_ffi`` (the only one that loads Windows DLLs: types, structs, constants,
prototypes, ``HttpApiError``), ``binding`` (the ``HttpSysBinding`` protocol and ``RealBinding``),
``fake`` (``RecordingBinding``, an in-memory http.sys), ``sddl`` (queue DACLs), ``handles``
(closeable session, URL group and queue objects), ``queue_open`` (Create / Attach / CreateOrAttach),
``capabilities`` (Windows versus Wine), ``listener`` (the controller's start/stop/dispose order) and
``worker`` (receive and respond on a queue handle).
Importing this package imports nothing else and loads no DLL, so it is safe on Linux. Nothing outside
``orchestrator.backends`` imports it (``backends.registry`` does, lazily).
"""
