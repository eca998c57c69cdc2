"""Sandboxes for the processes the controller starts: seccomp and Landlock, as values.

Owns: the effective sandbox of a worker pool or the listener (``policy``) and the seccomp filter
program (``seccomp``). Pure: it reads no file and makes no system call; the Linux backend resolves
the paths a runtime needs and the exec shim applies the result. Must not import ``os``, the
backends or the controller.
"""
