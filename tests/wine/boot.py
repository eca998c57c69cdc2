"""Bootstrap for Windows python.exe under Wine: ``boot.py REPO_Z TARGET [ARGS...]``.

The embeddable CPython's ``python313._pth`` makes it ignore PYTHONPATH, so this puts the repository
(given as a Wine path, ``Z:\\work\\main``) first on ``sys.path``, then runs TARGET as ``__main__``
with the remaining arguments. Runs under Windows CPython 3.13; standard library only.
"""

import runpy
import sys

sys.path[:0] = [sys.argv[1]]
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
