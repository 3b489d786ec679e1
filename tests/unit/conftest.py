"""Unit tests never shell out: any attempt to start a process fails the test."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

# plumbum, imported by kit.core.runner, asks platform.uname() for the processor when it is first
# imported, and Python answers that by running `uname -p`. Import it here, at collection, before
# the guard below is armed, so a test module that is the first to import the runner does not
# trip the guard over plumbum's own start-up rather than anything the kit does.
import kit.core.runner  # noqa: F401


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


# Real ELF files for the gate tests. They are compiled once per session by zig (a pinned
# dependency of the kit), BEFORE the per-test guard above is armed: the fixture prepares inputs,
# the tests themselves never start a process. Session-scoped fixtures set up before
# function-scoped ones, which is what makes this ordering hold.
C_PROGRAM = b"""
#include <stdio.h>
int main(void) { puts("hello"); return 0; }
"""


@pytest.fixture(scope="session")
def elf_samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import sys

    out = tmp_path_factory.mktemp("elf")
    src = out / "hello.c"
    src.write_bytes(C_PROGRAM)
    zig = [sys.executable, "-m", "ziglang", "cc"]
    variants = {
        "x86_64-static": ["-target", "x86_64-linux-musl", "-static"],
        "x86_64-dynamic": ["-target", "x86_64-linux-gnu"],
        "aarch64-static": ["-target", "aarch64-linux-musl", "-static"],
    }
    paths: dict[str, Path] = {}
    for name, flags in variants.items():
        dest = out / name
        # zig's global cache is shared with cargo-zigbuild, so its libc builds are reused.
        subprocess.run(
            [*zig, *flags, "-O2", "-o", str(dest), str(src)], check=True, capture_output=True
        )
        paths[name] = dest
    return paths
