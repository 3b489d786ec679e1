"""The kit's nox sessions, for a user's own noxfile.py in one line:

    from kit.sessions import *  # build, bench, package, release-check

Each session makes its own virtualenv, installs this same kit into it (from wherever it is
installed now: a path, a checkout in editable mode, or the index at this exact version), sets
the machine up (`setup`, idempotent) and runs one of the kit's tasks on the project the
noxfile sits in. posargs go to the task: `nox -s build -- --target aarch64`.
"""

from __future__ import annotations

import json
from importlib import metadata

import nox

__all__ = ["bench", "build", "package", "release_check"]

DIST = "static-rust-kit"


def kit_requirement(extras: tuple[str, ...] = ()) -> list[str]:
    """`pip install` arguments for the kit that is running now, with `extras`."""
    dist = metadata.distribution(DIST)
    suffix = f"[{','.join(extras)}]" if extras else ""
    direct = dist.read_text("direct_url.json")
    if direct:
        info = json.loads(direct)
        url = str(info.get("url", ""))
        if url.startswith("file://"):
            path = url.removeprefix("file://")
            editable = info.get("dir_info", {}).get("editable", False)
            return ["-e", path + suffix] if editable else [path + suffix]
    return [f"{DIST}{suffix}=={dist.version}"]


def _run(session: nox.Session, task: str, *extras: str) -> None:
    session.install(*kit_requirement(extras))
    session.run(DIST, "setup")
    session.run(DIST, task, *session.posargs)


@nox.session(default=False)
def build(session: nox.Session) -> None:
    """Build, gate and smoke the project's binaries (static-rust-kit build)."""
    _run(session, "build")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """The allocator benchmark (static-rust-kit bench); `-- --quick` for a short run."""
    _run(session, "bench", "bench")


@nox.session(default=False)
def package(session: nox.Session) -> None:
    """Multi-arch scratch images of the winner (static-rust-kit package)."""
    _run(session, "package")


@nox.session(name="release-check", default=False)
def release_check(session: nox.Session) -> None:
    """The pre-release checklist (static-rust-kit release-check)."""
    _run(session, "release-check", "bench")
