"""Invoke tasks: declarations and wiring only; every decision lives in kit/.

invoke setup | doctor | config
invoke build --target aarch64 --allocator mimalloc
invoke bench [--quick]                  (or nox -s bench)
invoke package [--allocator A] [--merge DIR,DIR]
invoke smoke
invoke release-check [--only GATE] [--skip GATE]
invoke ci-matrix
"""

from __future__ import annotations

from pathlib import Path

from invoke import task

from kit.core import console
from kit.core.boundary import guard
from kit.core.options import resolve_options

# The project root is where this file is, whichever directory invoke was started from.
ROOT = Path(__file__).resolve().parent


def _opts(**flags):
    return resolve_options(ROOT, flags={k: v for k, v in flags.items() if v is not None})


@task
def setup(c):
    """Install what is missing: pinned pip packages, Debian packages (as root), rustup link."""
    from kit.machine.setup import setup as run_setup

    with guard():
        run_setup(ROOT)


@task
def doctor(c):
    """Probe toolchains, zig, cargo-zigbuild, cross, the Docker engine and qemu-user."""
    from kit.machine.doctor import checks

    with guard():
        found, rows = checks()
        console.table(
            "tools",
            ["tool", "ok", "detail"],
            [[ch.name, "yes" if ch.ok else "no", ch.detail] for ch in found],
        )
        console.table(
            "how each target would be built here",
            ["target", "toolchain", "std", "backend", "not chosen because"],
            rows,
        )


@task(
    help={
        "target": "x86_64|amd64, aarch64|arm64, a full triple, 'all', or a comma list",
        "allocator": "system, jemalloc, mimalloc, 'all', or a comma list",
        "backend": "auto (default), cargo, zigbuild or cross",
        "manifest-path": "Cargo.toml of the project to build (default: rust_sample)",
        "profile": "cargo profile (default: release)",
        "bin": "build only this binary (comma list)",
    }
)
def build(c, target=None, allocator=None, backend=None, manifest_path=None, profile=None, bin=None):
    """Build static binaries per target x allocator, gate them, run them, record them in dist/."""
    from kit.build.plan import resolve_matrix
    from kit.build.project import read_project
    from kit.build.run import SUMMARY_COLUMNS, build_matrix, summary_rows

    with guard():
        opts = _opts(backend=backend, manifest_path=manifest_path, profile=profile, bins=bin)
        targets, allocs = resolve_matrix(opts, target, allocator)
        records = build_matrix(opts, read_project(opts.manifest), targets, allocs)
        console.table("builds", SUMMARY_COLUMNS, summary_rows(records))
        console.success(f"{len(records)} binaries in {opts.path(opts.dist_dir)}")


@task(help={"json": "print the resolved settings as JSON on stdout"})
def config(c, json=False):
    """Show the resolved settings and where each came from (default, file, env, flag)."""
    import json as json_mod

    from kit.core.options import describe

    with guard():
        rows = describe(_opts())
        if json:
            print(json_mod.dumps({k: {"value": v, "source": s} for k, v, s in rows}, indent=2))
        else:
            console.table("settings", ["key", "value", "source"], [list(r) for r in rows])


@task(
    help={
        "target": "x86_64|amd64, aarch64|arm64, 'all' or a comma list (default: targets)",
        "allocator": "allocator to ship (default: reports/bench/winner.json)",
        "check-reproducible": "build the layout twice and compare every blob",
        "size-budget-mb": "fail when a platform's compressed image is larger (MB)",
        "merge": "merge per-target OCI layouts (comma list or repeated) into one image",
        "bin": "the binary to package, when the project builds several",
    },
    iterable=["merge"],
)
def package(
    c,
    target=None,
    allocator=None,
    check_reproducible=False,
    size_budget_mb=None,
    merge=None,
    bin=None,
):
    """Put the static binaries in a reproducible multi-arch scratch OCI image (dist/oci/)."""

    from kit.image import package as pkg

    with guard():
        opts = _opts(size_budget_mb=size_budget_mb, bins=bin)
        dirs = [Path(d) for m in merge or [] for d in m.split(",") if d]
        if dirs:
            report = pkg.merge(opts, dirs)
        else:
            report = pkg.package(
                opts, targets=target, allocator=allocator, reproducible=check_reproducible
            )
        console.table("image", pkg.SUMMARY_COLUMNS, pkg.summary_rows(report))
        console.success(
            f"{report['image']}:{', '.join(report['tags']['tags'])} "
            f"{report['index_digest']} in {report['timings_s']['package']:.2f}s"
        )


@task(help={"health-timeout": "seconds to wait for the health endpoint (default 30)"})
def smoke(c, health_timeout=30.0):
    """Load the host-arch image into Docker, run it locked down, hit it, stop it."""
    from kit.image.container import smoke as run_smoke

    with guard():
        report = run_smoke(_opts(), health_timeout=float(health_timeout))
        console.success(
            f"{report['image']}: healthy in {report['healthy_after_s']:.2f}s, "
            f"stopped in {report['stop_s']:.2f}s, exit {report['exit_code']}"
        )


@task(
    help={
        "quick": "short run: fewer repetitions and shorter durations, still every variant "
        "and scenario",
        "repetitions": "fresh-process repetitions per cell (default: bench-repetitions, or "
        "bench-quick-repetitions with --quick)",
        "seed": "seed for the run order and the bootstrap (default 0)",
    }
)
def bench(c, quick=False, repetitions=None, seed=None):
    """Benchmark musl x system/jemalloc/mimalloc against static glibc and pick a winner."""
    from kit.bench.run import run_bench

    with guard():
        run_bench(_opts(), quick=quick, repetitions=repetitions, seed=seed)


@task(
    help={
        "only": "run only these gates (comma list); the rest are reported as skipped",
        "skip": "skip these gates (comma list; replaces gates-skip from [tool.kit])",
        "target": "targets to check (default: [tool.kit] targets)",
        "allocator": "allocators to build (default: [tool.kit] allocators)",
        "manifest-path": "Cargo.toml of the project to check (default: rust_sample)",
        "size-budget-mb": "fail the size-budget gate above this compressed size (MB)",
    }
)
def release_check(
    c, only=None, skip=None, target=None, allocator=None, manifest_path=None, size_budget_mb=None
):
    """Run the pre-release checklist gate by gate; write reports/release/report.{md,json}."""
    from kit.release.checklist import check

    with guard():
        opts = _opts(gates_skip=skip, manifest_path=manifest_path, size_budget_mb=size_budget_mb)
        check(opts, only=only, targets=target, allocators=allocator)


@task(
    help={
        "allocator": "allocator the workflow ships (default: bench winner, else the first "
        "configured)",
        "target": "targets, one runner each (default: [tool.kit] targets)",
    }
)
def ci_matrix(c, allocator=None, target=None):
    """Write .github/workflows/release.yml and .github/matrix.json (one runner per target)."""
    from kit.release.workflow import generate

    with guard():
        for path in generate(_opts(), targets=target, allocator=allocator):
            console.success(f"wrote {path}")
