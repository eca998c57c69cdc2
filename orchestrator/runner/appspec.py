"""``MODULE:APP`` application specs (gunicorn's syntax): parsing and importing.

Owns: turning ``pkg.mod:app`` or ``pkg.mod:create_app("x", debug=True)`` into a WSGI callable. Call
arguments must be literals; they are read with ``ast.literal_eval``, never ``eval``, so a spec cannot run
code. Every failure is a ``BootError`` (exit code 3: retrying cannot fix a typo).
Must not import anything from ``orchestrator`` except ``orchestrator.runner.errors``.
"""

from __future__ import annotations

import ast
import importlib
import sys
from dataclasses import dataclass
from wsgiref.types import WSGIApplication

from orchestrator.runner.errors import BootError

DEFAULT_ATTRIBUTE = "application"  # gunicorn's default when the spec has no ":APP" part


@dataclass(frozen=True, slots=True)
class AppSpec:
    """A parsed spec: import ``module``, take ``attribute``, and call it when ``is_call``."""

    module: str
    attribute: str
    is_call: bool = False
    args: tuple[object, ...] = ()
    kwargs: tuple[tuple[str, object], ...] = ()

    def __str__(self) -> str:
        if not self.is_call:
            return f"{self.module}:{self.attribute}"
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        return f"{self.module}:{self.attribute}({', '.join(parts)})"


def parse_app_spec(text: str) -> AppSpec:
    """Parse ``MODULE[:APP]`` where APP is a name or a call with literal arguments.

    Args:
        text: the spec as given on the command line.

    Returns:
        The parsed spec.

    Raises:
        BootError: the module path or the APP expression is not valid.
    """
    module, sep, expr = text.partition(":")
    if not module or not all(part.isidentifier() for part in module.split(".")):
        raise BootError(f"invalid app spec {text!r}: expected MODULE:APP, e.g. 'hello:app'")
    if not sep:
        return AppSpec(module, DEFAULT_ATTRIBUTE)
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        raise BootError(f"invalid app spec {text!r}: {expr!r} is not a name or a call") from None
    if isinstance(node, ast.Name):
        return AppSpec(module, node.id)
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise BootError(
            f"invalid app spec {text!r}: APP must be a name or a call like create_app()"
        )
    kwargs: list[tuple[str, object]] = []
    try:
        args = tuple(ast.literal_eval(arg) for arg in node.args)
        for kw in node.keywords:
            if kw.arg is None:  # **mapping
                raise ValueError
            kwargs.append((kw.arg, ast.literal_eval(kw.value)))
    except ValueError:
        raise BootError(f"invalid app spec {text!r}: call arguments must be literals") from None
    return AppSpec(module, node.func.id, is_call=True, args=args, kwargs=tuple(kwargs))


def load_app(spec: AppSpec, app_dir: str) -> WSGIApplication:
    """Import ``spec`` with ``app_dir`` first on ``sys.path`` and return the WSGI callable.

    Args:
        spec: what to import.
        app_dir: an absolute directory searched before everything else (gunicorn puts the cwd there).

    Returns:
        The application callable.

    Raises:
        BootError: the module or attribute is missing (one line), or the app's own code raised while
            importing or building it (with ``show_traceback`` set).
    """
    if not sys.path or sys.path[0] != app_dir:
        sys.path.insert(0, app_dir)
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        # Only a miss on the spec's own module (or a parent package) is the operator's typo; a missing
        # dependency inside the app is the app's bug and deserves its traceback.
        if exc.name is not None and (spec.module + ".").startswith(exc.name + "."):
            raise BootError(
                f"cannot import {spec.module!r}: no module named {exc.name!r} (app dir {app_dir})"
            ) from None
        raise BootError(f"importing {spec.module!r} failed: {exc}", show_traceback=True) from exc
    except (Exception, SystemExit) as exc:
        raise BootError(
            f"importing {spec.module!r} failed: {type(exc).__name__}: {exc}", show_traceback=True
        ) from exc
    try:
        target = getattr(module, spec.attribute)
    except AttributeError:
        raise BootError(f"module {spec.module!r} has no attribute {spec.attribute!r}") from None
    if spec.is_call:
        if not callable(target):
            raise BootError(f"{spec.module}:{spec.attribute} is not callable")
        try:
            target = target(*spec.args, **dict(spec.kwargs))
        except (Exception, SystemExit) as exc:
            raise BootError(
                f"calling {spec} failed: {type(exc).__name__}: {exc}", show_traceback=True
            ) from exc
    if not callable(target):
        raise BootError(f"{spec} is not a WSGI application (not callable)")
    app: WSGIApplication = target
    return app
