"""The worker runner: ``orchestrator worker`` serves one WSGI application from an inherited queue.

Owns: everything a worker process does between exec and exit. The modules split along the one seam that
differs between platforms — *where requests come from* — so the http.sys request queue on Windows can
replace the socket source without touching the WSGI bridge:

- ``main``          argparse, exit codes, composition (the only module that knows every other one)
- ``lifecycle``     signals, readiness notification and graceful drain around any ``Source``
- ``source``        the ``Source`` protocol: start, stop accepting, wait until idle, close
- ``socket_source`` a listening socket, an accept loop with backpressure and a fixed thread pool
- ``connection``    one HTTP/1.1 connection: keep-alive, pipelining, response framing
- ``http11``        pure wire format: request heads, streaming request bodies, response heads
- ``wsgi``          the transport-neutral WSGI bridge (environ, start_response, errors, close())
- ``appspec``       ``MODULE:APP`` parsing and importing
- ``listeners``     ``LISTEN_FDS`` socket activation and ``--bind``
- ``notify``        the sd_notify datagram
- ``errors``        the exceptions shared by the above

This package imports nothing from ``orchestrator`` outside itself and only the standard library, so the
runner works wherever the app does (httptools is not available on Windows).
"""
