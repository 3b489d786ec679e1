"""Nox sessions: environments plus calls; every decision lives in kit/.

nox -s tests                 set-up, then unit and integration tests
nox -s tests -- -m "not integration"
nox -s bench                 full allocator benchmark (reports/bench/<timestamp>/)
nox -s bench -- --quick
nox -s build|package|release-check   the kit's tasks (kit/sessions.py, as a user imports them)
nox -s lint
nox -s matrix                the whole real-crate, injection, cross and runner-rehearsal matrix
                             (CI runs a slice)
"""

from __future__ import annotations

import nox

# The kit's own sessions for any project (build, bench, package, release-check), imported the
# way a user's noxfile.py imports them: in one line.
from kit.sessions import *  # noqa: F403

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests"]


def _install(session: nox.Session, *extras: str) -> None:
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", spec)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Set the machine up (invoke setup), then run every test."""
    _install(session, "test", "bench")
    session.run("invoke", "setup")
    # the slowest tests named at the end: where CI's time goes
    session.run("pytest", "--durations=15", *session.posargs)


@nox.session(python="3.11", default=False)
def matrix(session: nox.Session) -> None:
    """The whole matrix of the real-crate, injection, cross and rehearsal tests (CI runs a
    slice): the rehearsal runs the committed workflow, every target's job and the merge."""
    _install(session, "test", "bench")  # it benchmarks the third-party server too
    session.run("invoke", "setup")
    session.run(
        "pytest",
        "-m",
        "integration",
        "tests/integration/test_crates.py",
        "tests/integration/test_inject.py",
        "tests/integration/test_cross.py",
        "tests/integration/test_rehearsal.py",
        *session.posargs,
        env={"SRK_FULL_MATRIX": "1"},
    )


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff and mypy --strict on the kit (both pinned in pyproject.toml)."""
    _install(session, "lint", "bench")  # numpy ships the types kit/bench/stats.py uses
    session.run("ruff", "check", "kit", "tests", "tasks.py", "noxfile.py")
    session.run("ruff", "format", "--check", "kit", "tests", "tasks.py", "noxfile.py")
    session.run("mypy")
