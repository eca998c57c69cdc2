"""Builds the listener's compiled hot path (Cython, ``_fast.pyx``) where it can.

Everything else is in ``pyproject.toml``. The extension is optional: without a C compiler, the Python
headers or Cython, or on Windows (no listener there), the package installs without it and the
listener runs its pure-Python twin (``fast.py``), saying so once in its log. Setting
``ORCHESTRATOR_NO_EXTENSIONS=1`` skips the build, as it skips loading the extension at run time.
"""

from __future__ import annotations

import glob
import os
import sys

from setuptools import Extension, setup


def extensions() -> list[Extension]:
    """The compiled modules to build here, if any."""
    if sys.platform == "win32" or os.environ.get("ORCHESTRATOR_NO_EXTENSIONS", "") not in ("", "0"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("orchestrator: Cython is not installed; the listener will use its pure-Python twin")
        return []
    here = "orchestrator/backends/linux/listener"
    fast = Extension(
        "orchestrator.backends.linux.listener._fast",
        [f"{here}/_fast.pyx"],
        # The module's other files (``include``d by _fast.pyx): an edit to one rebuilds it.
        depends=sorted(glob.glob(f"{here}/_*.pxi")),
        optional=True,  # a failed compile leaves the twin in charge instead of failing the install
        extra_compile_args=["-O2"],
    )
    return list(cythonize([fast], language_level=3, quiet=True))


setup(ext_modules=extensions())
