"""The kit's tasks: declarations and wiring only; every decision lives in the capabilities.

They serve three ways, all the same tasks:
- `static-rust-kit TASK` (or `srk TASK`), the console command `pip install` gives: run in a
  Cargo project, it finds Cargo.toml from the current directory upwards, as cargo does;
- a project's own tasks.py: `from kit.tasks import *` is the one line it needs;
- this repository's tasks.py, which also pins the root to itself.

invoke setup | doctor | config
invoke cross-image [--rebuild]                 (the image --backend cross builds in, offline)
invoke build -t aarch64 -a mimalloc            (-t/--target, -a/--allocator, -v/--verbose)
invoke --dry build -t all -a all               (print every command, run none)
invoke bench [--quick]                         (or nox -s bench)
invoke package [-a A] [--merge DIR,DIR]
invoke smoke
invoke release-check [-o GATE] [--skip GATE]
invoke ci-matrix
invoke rehearse                                (the committed workflow's jobs, in local runners)

Short flags mean the same in every task (kit/cli.py, SHORT_FLAGS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invoke.context import Context

from kit.cli import exit_2_on_parse_errors, session, task
from kit.core import console
from kit.core.options import Options, find_root, resolve_options

__all__ = [
    "attest",
    "bench",
    "build",
    "ci_matrix",
    "config",
    "cross_image",
    "doctor",
    "package",
    "publish",
    "rehearse",
    "release_check",
    "setup",
    "smoke",
    "verify",
]
VERBOSE = "stream the output of cargo and other long commands as it comes"

exit_2_on_parse_errors()


def _root(c: Context) -> Path:
    """The project root: pinned by a collection's config (`kit.root`), else found from the
    current directory (kit.core.options.find_root)."""
    pinned = c.config.get("kit", {}).get("root")
    return Path(pinned) if pinned else find_root(Path.cwd())


def _opts(c: Context, crate: str | None = None, **flags: Any) -> Options:
    """The options of this run; with `crate`, aimed at that published crate's source."""
    opts = resolve_options(_root(c), flags={k: v for k, v in flags.items() if v is not None})
    if crate:
        from kit.build.published import with_crate

        opts = with_crate(opts, crate)
    return opts


CRATE = "a published crate, NAME@VERSION (exact), fetched from crates.io by cargo and built"


@task(
    help={
        "for": "what the machine is for, comma-separated: build, cross, package, bench, test "
        "(default: test, which is everything)"
    }
)
def setup(c: Context, for_: str | None = None) -> None:
    """Install what is missing for a purpose: pinned pip packages, Debian packages (as root or
    with sudo), tools from crates.io, a toolchain with std source."""
    from kit.machine.setup import setup as run_setup

    with session(c):
        run_setup(_root(c), for_)


@task
def doctor(c: Context) -> None:
    """Probe toolchains, zig, cargo-zigbuild, cross, the Docker engine and qemu-user."""
    from kit.machine.doctor import show

    with session(c):
        show(_opts(c))


@task(
    help={
        "rebuild": "build it again even if the engine has it (the tag must come out the same)",
        "verbose": VERBOSE,
    }
)
def cross_image(c: Context, rebuild: bool = False, verbose: bool = False) -> None:
    """Build the image `--backend cross` runs in, from Debian's packages, and load it."""
    from kit.build.cross_image import image_command

    with session(c, verbose=verbose):
        image_command(_opts(c), rebuild=rebuild)


@task(
    help={
        "target": "x86_64|amd64, aarch64|arm64, a full triple, 'all', or a comma list",
        "allocator": "system, jemalloc, mimalloc, 'all', or a comma list",
        "backend": "auto (default), cargo, zigbuild or cross",
        "manifest-path": "Cargo.toml of the project to build (default: the nearest Cargo.toml)",
        "profile": "cargo profile (default: release)",
        "bin": "build only this binary (comma list)",
        "crate": CRATE,
        "verbose": VERBOSE,
    }
)
def build(
    c: Context,
    target: str | None = None,
    allocator: str | None = None,
    backend: str | None = None,
    manifest_path: str | None = None,
    profile: str | None = None,
    bin: str | None = None,
    crate: str | None = None,
    verbose: bool = False,
) -> None:
    """Build static binaries per target x allocator, gate them, run them, record them in dist/."""
    from kit.build.run import build_command

    with session(c, verbose=verbose):
        opts = _opts(
            c, crate, backend=backend, manifest_path=manifest_path, profile=profile, bins=bin
        )
        build_command(opts, target, allocator)


@task(help={"json": "print the resolved settings as JSON on stdout"})
def config(c: Context, json: bool = False) -> None:
    """Show the resolved settings and where each came from (default, file, env, flag)."""
    from kit.core.options import show

    with session(c):
        show(_opts(c), as_json=json)


@task(
    help={
        "target": "x86_64|amd64, aarch64|arm64, 'all' or a comma list (default: targets)",
        "allocator": "allocator to ship (default: the bench winner, see kit/bench/winner.py)",
        "check-reproducible": "package a second time in a fresh process and compare every file",
        "size-budget-mb": "fail when a platform's compressed image is larger (MB)",
        "merge": "merge per-target OCI layouts (comma list or repeated) into one image",
        "bin": "the binary to package, when the project builds several",
        "crate": CRATE,
        "verbose": VERBOSE,
    },
    iterable=["merge"],
)
def package(
    c: Context,
    target: str | None = None,
    allocator: str | None = None,
    check_reproducible: bool = False,
    size_budget_mb: float | None = None,
    merge: list[str] | None = None,
    bin: str | None = None,
    crate: str | None = None,
    verbose: bool = False,
) -> None:
    """Put the static binaries in a reproducible multi-arch scratch OCI image (dist/oci/)."""
    from kit.image.command import package_command

    with session(c, verbose=verbose):
        opts = _opts(c, crate, size_budget_mb=size_budget_mb, bins=bin)
        dirs = [Path(d) for m in merge or [] for d in m.split(",") if d]
        package_command(opts, target, allocator, check_reproducible, dirs)


@task(
    help={
        "to": "REGISTRY/REPOSITORY to push to, e.g. registry.example.com/team/app",
        "ca-cert": "a CA certificate (PEM) to trust for this registry (TLS is always verified)",
        "image-refs": "where to write the name@sha256 line (default: dist/oci/<image>.refs)",
        "crate": CRATE,
    },
)
def publish(
    c: Context,
    to: str | None = None,
    ca_cert: str | None = None,
    image_refs: str | None = None,
    crate: str | None = None,
) -> None:
    """Push the packaged multi-arch image to a registry by digest (skopeo); write its refs."""
    from kit.image.publish import publish as run_publish

    with session(c):
        run_publish(
            _opts(c, crate),
            to or "",
            ca_cert=Path(ca_cert) if ca_cert else None,
            refs_file=Path(image_refs) if image_refs else None,
        )


@task(
    help={
        "key": "the signing key, a PEM private key (default: KIT_SIGNING_KEY)",
        "crate": CRATE,
    }
)
def attest(c: Context, key: str | None = None, crate: str | None = None) -> None:
    """Attach each platform's SBOM and a signed SLSA provenance to the packaged image."""
    from kit.release.attest import attest as run_attest

    with session(c):
        run_attest(_opts(c, crate), Path(key) if key else None)


@task(
    positional=["image"],
    help={
        "image": "a layout directory (dist/oci/NAME) or REGISTRY/REPOSITORY@sha256:…",
        "key": "the public key (PEM) the provenance must be signed with",
    },
)
def verify(c: Context, image: str, key: str | None = None) -> None:
    """Check an image's signed provenance, its subjects and its SBOMs against the image."""
    from kit.release.attest import verify as run_verify

    with session(c):
        run_verify(_opts(c), image, Path(key) if key else None)


@task(help={"crate": CRATE})
def smoke(c: Context, crate: str | None = None) -> None:
    """Load the host-arch image into Docker, run it locked down, probe it (the crate's smoke
    setting), stop it."""
    from kit.image.command import smoke_command

    with session(c):
        smoke_command(_opts(c, crate))


@task(
    help={
        "quick": "short run: fewer repetitions and shorter durations, still every variant "
        "and scenario",
        "repetitions": "fresh-process repetitions per cell (default: bench-repetitions, or "
        "bench-quick-repetitions with --quick)",
        "seed": "seed for the order of the runs (default 0)",
        "crate": CRATE,
        "verbose": VERBOSE,
    }
)
def bench(
    c: Context,
    quick: bool = False,
    repetitions: int | None = None,
    seed: int | None = None,
    crate: str | None = None,
    verbose: bool = False,
) -> None:
    """Benchmark musl x system/jemalloc/mimalloc against static glibc and pick a winner."""
    from kit.bench.run import run_bench

    with session(c, verbose=verbose):
        run_bench(_opts(c, crate), quick=quick, repetitions=repetitions, seed=seed)


@task(
    help={
        "only": "run only these gates (comma list); the rest are reported as skipped",
        "skip": "skip these gates (comma list; replaces gates-skip from [tool.kit])",
        "target": "targets to check (default: [tool.kit] targets)",
        "allocator": "allocators to build (default: [tool.kit] allocators)",
        "manifest-path": "Cargo.toml of the project to check (default: the nearest Cargo.toml)",
        "size-budget-mb": "fail the size-budget gate above this compressed size (MB)",
        "verbose": VERBOSE,
    }
)
def release_check(
    c: Context,
    only: str | None = None,
    skip: str | None = None,
    target: str | None = None,
    allocator: str | None = None,
    manifest_path: str | None = None,
    size_budget_mb: float | None = None,
    verbose: bool = False,
) -> None:
    """Run the pre-release checklist gate by gate; write reports/release/report.{md,json}."""
    from kit.release.checklist import check

    with session(c, verbose=verbose):
        opts = _opts(c, gates_skip=skip, manifest_path=manifest_path, size_budget_mb=size_budget_mb)
        check(opts, only=only, targets=target, allocators=allocator)


@task(
    help={
        "allocator": "allocator the workflow ships (default: the committed baseline's winner, "
        "see kit/bench/winner.py)",
        "target": "targets, one runner each (default: [tool.kit] targets)",
    }
)
def ci_matrix(c: Context, allocator: str | None = None, target: str | None = None) -> None:
    """Write .github/workflows/release.yml and .github/matrix.json (one runner per target)."""
    from kit.release.workflow import generate

    with session(c):
        for path in generate(_opts(c), targets=target, allocator=allocator):
            console.success(f"wrote {path}")


@task(help={"verbose": VERBOSE})
def rehearse(c: Context, verbose: bool = False) -> None:
    """Run the committed release workflow's jobs in fresh Debian containers, as hosted runners
    would: every `run:` step in order, artifacts passed by copying (kit/release/rehearsal.py)."""
    from kit.release.rehearsal import rehearse_command

    with session(c, verbose=verbose):
        rehearse_command(_opts(c))
