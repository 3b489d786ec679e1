"""Invoke tasks: declarations and wiring only; every decision lives in kit/.

    invoke setup        install what is missing (pip, apt-get as root, rustup link)
    invoke doctor       what this machine can build with
    invoke build --target aarch64 --allocator mimalloc
    invoke config       the resolved settings and where each came from
"""

from __future__ import annotations

from invoke import task

from kit import console
from kit.boundary import guard
from kit.options import resolve_options


def _opts(**flags):
    return resolve_options(flags={k: v for k, v in flags.items() if v is not None})


@task
def setup(c):
    """Install what the kit needs and is missing (Debian packages as root, rustup link)."""
    from kit.setup import setup as run_setup

    with guard():
        run_setup()


@task
def doctor(c):
    """Probe toolchains, zig, cargo-zigbuild, cross, the Docker engine and qemu-user."""
    from kit.doctor import checks

    with guard():
        found, rows = checks()
        console.table("tools", ["tool", "ok", "detail"],
                      [[ch.name, "yes" if ch.ok else "no", ch.detail] for ch in found])
        console.table("how each target would be built here",
                      ["target", "toolchain", "std", "backend", "not chosen because"], rows)


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
    from kit.build import SUMMARY_COLUMNS, build_matrix, resolve_matrix, summary_rows

    with guard():
        opts = _opts(backend=backend, manifest_path=manifest_path, profile=profile, bins=bin)
        targets, allocs = resolve_matrix(opts, target, allocator)
        records = build_matrix(opts, targets, allocs)
        console.table("builds", SUMMARY_COLUMNS, summary_rows(records))
        console.success(f"{len(records)} binaries in {opts.path(opts.dist_dir)}")


@task(help={"json": "print the resolved settings as JSON on stdout"})
def config(c, json=False):
    """Show the resolved settings and where each came from (default, file, env, flag)."""
    import json as json_mod

    from kit.options import describe

    with guard():
        rows = describe(resolve_options())
        if json:
            print(json_mod.dumps({k: {"value": v, "source": s} for k, v, s in rows}, indent=2))
        else:
            console.table("settings", ["key", "value", "source"], [list(r) for r in rows])
