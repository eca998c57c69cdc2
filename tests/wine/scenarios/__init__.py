"""Scripts that run under Windows CPython inside Wine (started through ``tests/wine/boot.py``).

They are not pytest modules: each prints JSON lines on stdout and takes commands on stdin.
"""
