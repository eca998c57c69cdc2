"""``MODULE:APP`` specs: parsing is literal-only, and import failures are one-line boot errors."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.runner.appspec import AppSpec, load_app, parse_app_spec
from orchestrator.runner.errors import BootError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello:app", AppSpec("hello", "app")),
        ("pkg.sub.mod:application", AppSpec("pkg.sub.mod", "application")),
        ("hello", AppSpec("hello", "application")),
        ("hello: app ", AppSpec("hello", "app")),
        ("hello:create_app()", AppSpec("hello", "create_app", is_call=True)),
        ('hello:create_app("x")', AppSpec("hello", "create_app", is_call=True, args=("x",))),
        (
            "hello:make(1, [2, 3], debug=True, name=None)",
            AppSpec(
                "hello",
                "make",
                is_call=True,
                args=(1, [2, 3]),
                kwargs=(("debug", True), ("name", None)),
            ),
        ),
    ],
)
def test_valid_specs_parse_to_module_attribute_and_literal_arguments(
    text: str, expected: AppSpec
) -> None:
    """Names, factory calls and literal arguments are accepted (gunicorn's syntax)."""
    assert expected == parse_app_spec(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        ":app",
        "hello world:app",
        "hello.:app",
        "hello:",
        "hello:app.attr",
        "hello:create_app(os.getcwd())",
        "hello:create_app(*args)",
        "hello:create_app(**kw)",
        "hello:__import__('os').system('true')",
        "hello:create_app()()",
        "hello:1 +",
    ],
)
def test_invalid_specs_are_boot_errors_without_evaluating_anything(text: str) -> None:
    """Anything but a name or a call with literal arguments is refused before any import."""
    with pytest.raises(BootError):
        parse_app_spec(text)


def test_a_parsed_call_spec_renders_back_as_written() -> None:
    """``str(spec)`` is what logs and errors show."""
    assert "m:f('x', n=2)" == str(parse_app_spec("m:f('x', n=2)"))


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory of small modules; ``sys.path`` and ``sys.modules`` are restored afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    (tmp_path / "rt_plain.py").write_text(
        textwrap.dedent(
            """
            def app(environ, start_response):
                return [b"plain"]

            def create_app(greeting="hi", *, loud=False):
                def app(environ, start_response):
                    return [greeting.upper().encode() if loud else greeting.encode()]
                return app

            def broken_factory():
                raise RuntimeError("factory exploded")

            not_callable = 42
            """
        )
    )
    (tmp_path / "rt_raises.py").write_text("raise ValueError('bad config')\n")
    (tmp_path / "rt_needs_dep.py").write_text("import rt_dependency_that_is_missing\n")
    return tmp_path


def test_load_app_imports_from_the_app_dir_first(app_dir: Path) -> None:
    """The module is found in ``app_dir`` and the attribute returned."""
    app = load_app(parse_app_spec("rt_plain:app"), str(app_dir))
    assert [b"plain"] == app({}, lambda *a: lambda b: None)
    assert str(app_dir) == sys.path[0]


def test_load_app_calls_a_factory_with_its_literal_arguments(app_dir: Path) -> None:
    """``create_app("x", loud=True)`` is called once and its result is the app."""
    app = load_app(parse_app_spec('rt_plain:create_app("x", loud=True)'), str(app_dir))
    assert [b"X"] == app({}, lambda *a: lambda b: None)


@pytest.mark.parametrize(
    ("spec", "message", "traceback"),
    [
        ("rt_missing_module:app", "no module named 'rt_missing_module'", False),
        ("rt_missing_pkg.sub:app", "no module named 'rt_missing_pkg'", False),
        ("rt_plain:nope", "has no attribute 'nope'", False),
        ("rt_plain:not_callable", "not a WSGI application", False),
        ("rt_plain:not_callable()", "is not callable", False),
        ("rt_raises:app", "ValueError: bad config", True),
        ("rt_needs_dep:app", "rt_dependency_that_is_missing", True),
        ("rt_plain:broken_factory()", "RuntimeError: factory exploded", True),
    ],
)
def test_load_failures_are_boot_errors_and_only_app_bugs_carry_a_traceback(
    app_dir: Path, spec: str, message: str, traceback: bool
) -> None:
    """A typo is a one-line message; an exception in the app's own code keeps its traceback."""
    with pytest.raises(BootError) as info:
        load_app(parse_app_spec(spec), str(app_dir))
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert traceback == info.value.show_traceback
