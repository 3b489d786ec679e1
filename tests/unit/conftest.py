"""Unit tests never shell out: any attempt to start a process fails the test."""

from __future__ import annotations

import subprocess

import pytest


class ShellOutForbidden(AssertionError):
    pass


@pytest.fixture(autouse=True)
def _no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbid(*args, **kwargs):
        raise ShellOutForbidden(f"unit tests must not start processes: {args[:1]}")

    monkeypatch.setattr(subprocess.Popen, "__init__", forbid)
    monkeypatch.setattr("os.system", forbid)
    monkeypatch.setattr("os.execv", forbid)
    monkeypatch.setattr("os.posix_spawn", forbid)
