"""Nox sessions: environments plus calls; every decision lives in kit/.

nox -s tests                 set-up, then unit and integration tests
nox -s tests -- -m "not integration"
nox -s bench                 full allocator benchmark (reports/bench/<timestamp>/)
nox -s bench -- --quick
nox -s lint
nox -s matrix                the whole real-crate matrix (CI runs the x86_64 slice)
"""

from __future__ import annotations

import nox

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
    session.run("pytest", *session.posargs)


@nox.session(python="3.11", default=False)
def matrix(session: nox.Session) -> None:
    """The whole matrix of the real-crate tests (CI runs a slice): every target, under qemu."""
    _install(session, "test")
    session.run("invoke", "setup")
    session.run(
        "pytest",
        "-m",
        "integration",
        "tests/integration/test_crates.py",
        *session.posargs,
        env={"SRK_FULL_MATRIX": "1"},
    )


@nox.session(python="3.11", default=False)
def bench(session: nox.Session) -> None:
    """Allocator benchmark; posargs go to `invoke bench` (e.g. -- --quick, --repetitions 7)."""
    _install(session, "bench")
    session.run("invoke", "setup")
    session.run("invoke", "bench", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff and mypy --strict on the kit (both pinned in pyproject.toml)."""
    _install(session, "lint", "bench")  # numpy ships the types kit/bench/stats.py uses
    session.run("ruff", "check", "kit", "tests", "tasks.py", "noxfile.py")
    session.run("ruff", "format", "--check", "kit", "tests", "tasks.py", "noxfile.py")
    session.run("mypy")
