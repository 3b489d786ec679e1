"""The environment a child gets (kit.core.runner.Invocation.environ): the caller's, with the
command's own additions on top, so a variable in the user's shell never replaces the kit's."""

from __future__ import annotations

import pytest

from kit.core.runner import Invocation


def test_the_commands_additions_win_over_the_callers_environment(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("PORT", "65536")
    monkeypatch.setenv("KIT_TEST_KEPT", "yes")
    env = Invocation(("server",), {"PORT": "8080"}).environ()
    assert env["PORT"] == "8080"
    assert env["KIT_TEST_KEPT"] == "yes"


def test_the_environment_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch):
    inv = Invocation(("tool",), {})
    monkeypatch.setenv("KIT_TEST_LATE", "1")
    assert inv.environ()["KIT_TEST_LATE"] == "1"
