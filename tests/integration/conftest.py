"""Integration tests build, run and load for real. They share the repo's cargo target dir
(target/), so each crate x target x allocator is compiled once per CI run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kit.build.project import Project, read_project
from kit.build.run import build_matrix
from kit.core.allocators import MIMALLOC
from kit.core.options import Options, resolve_options
from kit.core.targets import SHIPPING_TARGETS
from kit.image.report import PackageReport

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


@pytest.fixture(scope="session")
def quick_bench(tmp_path_factory):
    """One short `bench --quick` run per session, shared by the bench and release-check tests.

    Durations are cut to the minimum wrk accepts (1 s) and 2 repetitions: the figures are not
    judged here (issue 3: speed is reported by benchmarks, not asserted by tests)."""
    from kit.bench.run import run_bench
    from kit.bench.variants import build_variants

    reports = tmp_path_factory.mktemp("reports")
    opts = resolve_options(ROOT, flags={"reports_dir": str(reports)})
    variants = build_variants(opts)  # before the environment below: rustc has a jemalloc too
    # Allocator settings in the caller's environment that would abort jemalloc at start-up
    # (abort_conf) and stop mimalloc's purging: the benchmark must not pass them on.
    leaks = {
        "MALLOC_CONF": "abort_conf:true,no_such_option:1",
        "_RJEM_MALLOC_CONF": "abort_conf:true,no_such_option:1",
        "MIMALLOC_PURGE_DELAY": "-1",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in leaks.items():
            mp.setenv(name, value)
        outcome = run_bench(
            opts,
            quick=True,
            repetitions=2,
            seed=1,
            http_duration_s=1.0,
            warmup_s=1.0,
            command_seconds=0.2,
            connections=(8, 32),
            variants=variants,
        )
    assert outcome is not None  # None only in a dry run
    return reports, outcome


def _opts(base: Path, **flags) -> Options:
    return resolve_options(
        ROOT,
        flags={
            "dist_dir": str(base / "dist"),
            "reports_dir": str(base / "reports"),
            "target_dir": os.environ.get("KIT_TARGET_DIR", str(ROOT / "target")),
            **flags,
        },
    )


@pytest.fixture(scope="session")
def project() -> Project:
    return read_project(resolve_options(ROOT).manifest)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, project: Project) -> Options:
    """One build of both arches with mimalloc in a temp dist/ that shares the repo's cargo
    target dir (the package, publish and attest tests use it)."""
    opts = _opts(tmp_path_factory.mktemp("pkg"))
    build_matrix(opts, project, SHIPPING_TARGETS, (MIMALLOC,))
    return opts


@pytest.fixture(scope="session")
def packaged(built: Options, project: Project) -> PackageReport:
    from kit.image.package import package

    report = package(built, project, targets="all", allocator="mimalloc")
    assert report is not None  # None only in a dry run
    return report
