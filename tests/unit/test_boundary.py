from __future__ import annotations

import pytest
from invoke.exceptions import Exit

from kit.core import errors
from kit.core.boundary import guard


def _all_error_classes():
    seen, todo = [], [errors.KitError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo += cls.__subclasses__()
    return seen


def test_every_error_has_a_distinct_exit_code():
    """The catalogue in kit/core/errors.py gives each kind of failure its own code; a refinement
    elsewhere (records.RecordError is a ConfigError) keeps its parent's code, never a new one."""
    import kit.core.records  # noqa: F401  (defines a refinement)

    catalogue = [
        cls
        for cls in _all_error_classes()
        if cls.__module__ == errors.__name__ and cls is not errors.KitError
    ]
    codes = [cls.exit_code for cls in catalogue]
    assert len(codes) == len(set(codes))
    assert all(code not in (0, 1) for code in codes)
    for cls in _all_error_classes():
        if cls.__module__ != errors.__name__:
            parent = next(b for b in cls.__mro__[1:] if b.__module__ == errors.__name__)
            assert cls.exit_code == parent.exit_code, cls


def test_kit_error_becomes_its_exit_code_with_message_and_hint(capsys):
    with pytest.raises(Exit) as e, guard():
        raise errors.ConfigError("Unknown target 'sparc'.", hint="Valid targets: all, x86_64")
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Unknown target 'sparc'" in err and "Valid targets" in err
    assert "Traceback" not in err


def test_failed_command_shows_the_command_and_its_output(capsys):
    with pytest.raises(Exit) as e, guard():
        raise errors.CommandFailedError(
            "build failed",
            argv=["cargo", "build"],
            returncode=101,
            output="error[E0308]: mismatched types",
        )
    assert e.value.code == 4
    err = capsys.readouterr().err
    assert "cargo build" in err and "E0308" in err


def test_ctrl_c_exits_130(capsys):
    with pytest.raises(Exit) as e, guard():
        raise KeyboardInterrupt
    assert e.value.code == 130
    assert "Interrupted" in capsys.readouterr().err


def test_messages_are_shown_as_text_not_as_markup(capsys):
    with pytest.raises(Exit), guard():
        raise errors.ConfigError("no [features] table", hint="add it to [features]")
    err = capsys.readouterr().err
    assert "no [features] table" in err and "add it to [features]" in err
