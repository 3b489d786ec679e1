"""Allocators injected at link time into an unchanged crate (musl targets).

musl lets a static program supply its own malloc family: an object on the link line that
defines malloc, free, calloc, realloc, aligned_alloc, posix_memalign, memalign and
malloc_usable_size wins over libc.a's (../shared/TOOLCHAIN.md has the measurement). So the
kit builds each allocator once per target and version, keeps it in its cache
(kit.core.cache), and adds it to the final link of each binary:

- mimalloc: the C source vendored in libmimalloc-sys (pinned by kit/build/shims/mimalloc),
  its single-file static.c compiled by zig cc with MI_MALLOC_OVERRIDE, into one object;
- jemalloc: tikv-jemalloc-sys (pinned by kit/build/shims/jemalloc) with its
  `unprefixed_malloc_on_supported_platforms` feature, built by cargo like any crate of the
  target, which leaves libjemalloc.a with plain malloc/free symbols in its build-script
  output. It is linked whole (--whole-archive), so every one of those symbols comes from it
  and none from musl.

Because the C symbols themselves are replaced, C code in -sys crates allocates through the
same allocator too, which a Rust `#[global_allocator]` alone does not give.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from kit.build import toolchain
from kit.build.backends import BuildRequest, all_backends
from kit.build.plan import BuildPlan
from kit.core import cache, console, fs, runner
from kit.core.allocators import SYSTEM
from kit.core.errors import GateError, ToolMissingError
from kit.core.options import Options
from kit.core.paths import Paths

SHIMS = Path(__file__).parent / "shims"

# mimalloc's static.c as a link-time replacement of the malloc family. __DATE__/__TIME__ (in
# its verbose banner) come from SOURCE_DATE_EPOCH=0: a fixed value keeps the object the same
# for every project that shares the cache entry, and zig cc refuses them otherwise.
MIMALLOC_CFLAGS = ("-O3", "-DNDEBUG", "-DMI_MALLOC_OVERRIDE=1", "-Wno-date-time")


@dataclass(frozen=True)
class Injection:
    """One allocator's cached objects for one target, and how to link them."""

    allocator: str
    source: str  # "libmimalloc-sys 0.1.49", "tikv-jemalloc-sys 0.7.1+5.3.1-..."
    file: Path
    sha256: str

    @property
    def link_args(self) -> tuple[str, ...]:
        if self.allocator == "jemalloc":
            return (
                "-C",
                "link-arg=-Wl,--whole-archive",
                "-C",
                f"link-arg={self.file}",
                "-C",
                "link-arg=-Wl,--no-whole-archive",
            )
        return ("-C", f"link-arg={self.file}")


def pinned_version(shim: str, crate: str) -> str:
    """The exact version of `crate` that the shim's Cargo.lock pins."""
    with (SHIMS / shim / "Cargo.lock").open("rb") as f:
        lock = tomllib.load(f)
    for pkg in lock.get("package", []):
        if pkg["name"] == crate:
            return str(pkg["version"])
    raise AssertionError(f"{crate} is not in kit/build/shims/{shim}/Cargo.lock")  # packaging bug


def injection(opts: Options, plan: BuildPlan) -> Injection:
    """The allocator of `plan` for its target, built into the cache when missing."""
    if plan.backend == "cross":
        raise ToolMissingError(
            f"{plan.allocator.name} cannot be injected into a cross build yet: the objects are "
            "built on the host and cross links inside its container.",
            hint='Use --backend zigbuild, or allocator-link = "feature" with a crate feature.',
        )
    zig = toolchain.zig()
    if zig is None and not runner.is_dry():
        raise ToolMissingError(
            "zig is needed to build the injected allocator (pip install ziglang==0.15.2)."
        )
    root = cache.cache_root(opts)
    zig_version = zig.version if zig else "unknown"
    triple = plan.target.triple
    if plan.allocator.name == "mimalloc":
        version = pinned_version("mimalloc", "libmimalloc-sys")
        inputs: dict[str, object] = {
            "allocator": "mimalloc",
            "source": f"libmimalloc-sys {version}",
            "target": triple,
            "zig": zig_version,
            "cflags": list(MIMALLOC_CFLAGS),
        }
        name = "mimalloc.o"

        def make(work: Path) -> None:
            _build_mimalloc(plan, work / name)

    else:
        version = pinned_version("jemalloc", "tikv-jemalloc-sys")
        env = plan.target.allocator_env("jemalloc")
        inputs = {
            "allocator": "jemalloc",
            "source": f"tikv-jemalloc-sys {version}",
            "target": triple,
            "zig": zig_version,
            "toolchain": plan.request.std.toolchain.rustc_verbose,
            "env": env,
        }
        name = "libjemalloc.a"

        def make(work: Path) -> None:
            _build_jemalloc(opts, plan, root, env, work / name)

    source = str(inputs["source"])
    if runner.is_dry():
        make(root / "dry-run")  # prints the commands, starts none
        return Injection(plan.allocator.name, source, root / "alloc" / "…" / name, "")
    entry = cache.entry(root, "alloc", inputs, make)
    file = entry / name
    return Injection(plan.allocator.name, source, file, fs.sha256_of(file))


def _build_mimalloc(plan: BuildPlan, out: Path) -> None:
    src = _crate_source(SHIMS / "mimalloc", "libmimalloc-sys") / "c_src" / "mimalloc" / "v3"
    zig = toolchain.zig()
    zig_argv = zig.argv if zig else ("zig",)
    console.info(f"building mimalloc for {plan.target.triple} (once; kept in the kit's cache)")
    runner.run(
        [
            *zig_argv,
            "cc",
            "-target",
            f"{plan.target.arch}-linux-musl",
            *MIMALLOC_CFLAGS,
            f"-I{src / 'include'}",
            "-c",
            str(src / "src" / "static.c"),
            "-o",
            str(out),
        ],
        env={"SOURCE_DATE_EPOCH": "0"},
        what=f"zig cc of mimalloc for {plan.target.triple}",
    )


def _crate_source(shim: Path, crate: str) -> Path:
    """Where cargo unpacked the shim's pinned `crate` (downloaded by `cargo metadata` if
    needed): read from cargo's own answer, not guessed from the registry's layout."""
    out = runner.capture(
        [
            "cargo",
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
            str(shim / "Cargo.toml"),
        ]
    )
    if not out:  # dry run
        return Path("…") / crate
    for pkg in json.loads(out)["packages"]:
        if pkg["name"] == crate:
            return Path(pkg["manifest_path"]).parent
    raise AssertionError(f"cargo metadata of {shim} lists no {crate}")  # packaging bug


def _build_jemalloc(
    opts: Options, plan: BuildPlan, root: Path, env: dict[str, str], out: Path
) -> None:
    """Build the jemalloc shim for the target with the plan's toolchain and backend, in the
    cache's own target dir (shared by every project), and keep its libjemalloc.a."""
    req = BuildRequest(
        manifest=SHIMS / "jemalloc" / "Cargo.toml",
        target=plan.target,
        allocator=SYSTEM,
        std=plan.request.std,
        target_dir=root / "target",
    )
    inv = all_backends()[plan.backend].plan(req)
    inv = type(inv)(inv.argv, {**inv.env, **env}, root)
    console.info(f"building jemalloc for {plan.target.triple} (once; kept in the kit's cache)")
    log = Paths.of(opts).build_logs / f"jemalloc-{plan.target.triple}.log"
    done = runner.run(inv, log_file=log, what=f"build of jemalloc for {plan.target.triple}")
    if done.dry:
        return
    for line in done.stdout.splitlines():
        if '"build-script-executed"' not in line:
            continue
        msg = json.loads(line)
        if "tikv-jemalloc-sys" in msg["package_id"]:
            shutil.copyfile(Path(msg["out_dir"]) / "lib" / "libjemalloc.a", out)
            return
    raise GateError(f"The jemalloc build left no libjemalloc.a (see {log}).")
