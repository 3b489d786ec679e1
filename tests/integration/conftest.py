"""Integration tests build, run and load for real. They share the repo's cargo target dir
(target/), so each crate x target x allocator is compiled once per CI run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def kit_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 1800, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    """Run `invoke <args>` as a user would, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def kit():
    return kit_cli
