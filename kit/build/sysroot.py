"""std built once per toolchain and target, shared by every project the kit builds (issue 9, §8).

Where no toolchain ships std for a target, std is compiled from the toolchain's own source.
Cargo's `-Zbuild-std` does that inside each project's target dir and fingerprints std's units
with that project's profile, so every project (and every differing profile) compiled std again:
about 60-80 s per target on 2 cores. Instead, as xargo did, the kit builds std once, with a
fixed profile, into a sysroot in its cache (kit.core.cache):

    <cache>/std/<triple>/<key>/lib/rustlib/<triple>/lib/lib{core,alloc,std,...}-*.{rlib,rmeta}

and each build passes `--sysroot=<that dir>` in the target's rustflags. With `--target`, those
apply to the target's units only, so build scripts and proc macros still use the toolchain's
own host std. No unstable flag is left in the user's build: it needs no RUSTC_BOOTSTRAP.

How std is built here, and why (each seen working with rustc 1.96, x86_64 and aarch64 musl):
- a throwaway binary crate, `cargo zigbuild -Zbuild-std=std,panic_unwind,panic_abort` (zig
  links the probe, which proves the sysroot links and leaves zig's musl in zig's own cache);
- the profile of an official std: opt-level 3, line-tables-only debug info, one codegen unit,
  panic=unwind, and `-C embed-bitcode=yes`, so a user crate with `lto = true` can use it;
- panic_abort compiled with `-C panic=abort`, as rustc's own bootstrap does: without it a crate
  with `panic = "abort"` fails ("the crate `panic_abort` does not have the panic strategy
  `abort`"). Cargo has no stable per-package rustflags, so the probe uses the unstable
  `profile-rustflags` (it builds with RUSTC_BOOTSTRAP=1 anyway). Cargo warns that the
  `panic_abort` spec "did not match any packages": it checks the spec against the workspace
  only, yet applies it to build-std's units (seen in `cargo -v`).

The key is everything that changes the rlibs: `rustc -vV` (version, commit, host, LLVM), the
target, the std crates and profile above, and this recipe's own version. Not zig's version:
std's rlibs hold rustc's output only (no C object: `ar t` on every one of them), zig only links.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kit.build import toolchain
from kit.build.backends import path_remaps
from kit.build.toolchain import RustToolchain, StdPlan
from kit.core import cache, console, runner
from kit.core.errors import CommandFailedError
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.runner import Invocation
from kit.core.targets import Target

RECIPE = 2  # bump when the way a sysroot is built changes: new entries, old ones left alone
# 2: the build machine's paths remapped (kit.build.backends.path_remaps)
STD_CRATES = ("std", "panic_unwind", "panic_abort")
PROBE = "kit-std-probe"
# An official std's profile (rustc's bootstrap: codegen-units-std = 1, debuginfo-level-std = 1)
PROFILE = {
    "opt-level": 3,
    "debug": "line-tables-only",
    "codegen-units": 1,
    "panic": "unwind",
    "lto": False,
    "debug-assertions": False,
    "overflow-checks": False,
    "incremental": False,
}
# A dry run reads toolchains from disk without running rustc, so `rustc -vV` is unknown there.
UNPROBED = "<key: rustc -vV is not run in a dry run>"


def target_flags(target: Target) -> list[str]:
    """rustc flags for std's own units: bitcode for LTO users; for musl, crt and libc from zig."""
    flags = ["-C", "embed-bitcode=yes"]
    if target.libc == "musl":
        flags += ["-C", "link-self-contained=no"]
    return flags


def recipe() -> dict[str, Any]:
    """How std is built, whatever the toolchain and target (also an input of the cross image,
    which builds std the same way: kit.build.cross_image)."""
    return {"recipe": RECIPE, "crates": list(STD_CRATES), "profile": PROFILE}


def inputs(tc: RustToolchain, target: Target) -> dict[str, Any]:
    """What a sysroot is built from: its cache key (kit.core.cache.key_of)."""
    return {
        **recipe(),
        "rustc": tc.rustc_vv,
        "target": target.triple,
        "rustflags": target_flags(target),
    }


def kind(target: Target) -> str:
    return f"std/{target.triple}"


def location(root: Path, tc: RustToolchain, target: Target) -> Path:
    """Where the sysroot for `tc` and `target` is (or will be) under the cache `root`."""
    if not tc.rustc_vv:
        return root / kind(target) / UNPROBED
    return root / kind(target) / cache.key_of(inputs(tc, target))


def locator(opts: Options) -> Callable[[RustToolchain, Target], Path] | None:
    """For kit.build.toolchain.choose_std: the cached sysroot's place, or None (the escape
    hatch `std-cache = false`: cargo's -Zbuild-std in each project's target dir)."""
    if not opts.std_cache:
        return None
    root = cache.cache_root(opts)
    return lambda tc, target: location(root, tc, target)


def probe_manifest() -> str:
    """Cargo.toml of the throwaway crate whose build compiles std."""
    profile = "\n".join(f"{k} = {json.dumps(v)}" for k, v in PROFILE.items())
    return (
        'cargo-features = ["profile-rustflags"]\n\n'
        f'[package]\nname = "{PROBE}"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n'
        "[workspace]\n\n"  # its own workspace, wherever the cache is
        f"[profile.release]\n{profile}\n\n"
        '[profile.release.package.panic_abort]\nrustflags = ["-C", "panic=abort"]\n'
    )


PROBE_MAIN = "fn main() {\n    assert_eq!(std::thread::spawn(|| 6 * 7).join().unwrap(), 42);\n}\n"


def write_probe(crate: Path) -> None:
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text(probe_manifest())
    (crate / "src" / "main.rs").write_text(PROBE_MAIN)


def build_invocation(
    tc: RustToolchain, target: Target, crate: Path, target_dir: Path
) -> Invocation:
    """The cargo command that compiles std (and the probe) for `target`. Its dependencies come
    from cargo's home and their paths would end up in every binary that links this std: they
    are remapped as a crate's own build remaps them (not part of the key: the same rlibs
    result wherever cargo's home is)."""
    flags = target_flags(target) + [
        f"--remap-path-prefix={path}={name}"
        for path, name in path_remaps(target_dir, toolchain.cargo_home())
    ]
    quoted = ", ".join(json.dumps(f) for f in flags)
    argv = [
        *tc.cargo_argv(),
        "zigbuild",
        "--manifest-path",
        str(crate / "Cargo.toml"),
        "--release",
        "--target",
        target.triple,
        "-Zbuild-std=" + ",".join(STD_CRATES),
        "--config",
        f"target.{target.triple}.rustflags = [{quoted}]",
        "--message-format=json-render-diagnostics",
    ]
    env = {"CARGO_TARGET_DIR": str(target_dir)}
    if not tc.nightly:
        env["RUSTC_BOOTSTRAP"] = "1"  # -Zbuild-std and profile-rustflags are unstable
    return Invocation(tuple(argv), env, crate)


def std_libraries(cargo_stdout: str) -> list[Path]:
    """The rlibs and rmetas of std and its dependencies, from cargo's JSON messages: every
    library artifact but the probe's own (build scripts are host programs, not libraries)."""
    found: list[Path] = []
    for line in cargo_stdout.splitlines():
        if not line.startswith("{"):
            continue
        msg = json.loads(line)
        if msg.get("reason") != "compiler-artifact" or msg["target"]["name"] == PROBE:
            continue
        if "custom-build" in msg["target"]["kind"]:
            continue
        found += [Path(f) for f in msg["filenames"] if f.endswith((".rlib", ".rmeta"))]
    return found


def prepare(opts: Options, plans: Iterable[tuple[StdPlan, str]]) -> None:
    """Make sure each cached sysroot that these (std plan, backend) pairs use exists: built
    once, then shared. cross builds inside its image with the image's own std: none needed."""
    wanted = {
        std.sysroot: std
        for std, backend in plans
        if std.std == "cached-sysroot" and std.sysroot is not None and backend != "cross"
    }
    for std in wanted.values():
        ensure(opts, std)


def ensure(opts: Options, std: StdPlan) -> Path:
    """The sysroot `std` names, built now if the cache lacks it (in a dry run: planned only)."""
    assert std.sysroot is not None
    if (std.sysroot / "inputs.json").is_file():
        console.info(f"{std.target.triple}: std from the kit's cache ({std.sysroot})")
        return std.sysroot
    if runner.is_dry():
        runner.run(build_invocation(std.toolchain, std.target, Path("<probe>"), Path("<tmp>")))
        return std.sysroot
    log = Paths.of(opts).build_logs / f"std-{std.target.triple}.log"
    made = cache.entry(
        cache.cache_root(opts),
        kind(std.target),
        inputs(std.toolchain, std.target),
        lambda work: build_into(work, std, log),
    )
    if made != std.sysroot:  # a key computed two ways: never expected, cheap to check
        raise AssertionError(f"sysroot made at {made}, planned at {std.sysroot}")
    return made


def build_into(work: Path, std: StdPlan, log: Path) -> None:
    """Compile std in `work/build` (deleted afterwards) and lay it out as a sysroot in `work`."""
    build = work / "build"
    write_probe(build / "crate")
    inv = build_invocation(std.toolchain, std.target, build / "crate", build / "target")
    triple = std.target.triple
    with console.steps("building std", 1, unit="crates") as progress:
        progress.start(f"{triple} (once, into the kit's cache)")

        def on_line(stream: str, line: str) -> None:
            if stream == "stdout" and '"compiler-artifact"' in line:
                progress.tick(triple)
            elif stream == "stderr":
                console.verbose(line)

        done = runner.run(inv, log_file=log, what=f"build of std for {triple}", on_line=on_line)
        lib = work / "lib" / "rustlib" / triple / "lib"
        lib.mkdir(parents=True)
        for f in std_libraries(done.stdout):
            shutil.copy2(f, lib / f.name)
        if not any(lib.glob("libstd-*.rlib")):
            raise CommandFailedError(
                f"The build of std for {triple} left no libstd rlib (full log: {log}).",
                argv=list(inv.argv),
            )
        progress.done(triple)
    shutil.rmtree(build)
