"""Build backends: cargo, cargo-zigbuild and cross, behind one small Protocol.

Each backend plans a command and its environment from a BuildRequest (pure, testable) and says
why it cannot build a target here (None when it can). `select_backend` implements
`--backend auto`: the first backend in the target's preference order that can build it.

A request with `link_args` (an allocator injected at link time, kit.build.inject) is planned as
`cargo rustc --bin B -- <link args>` for one binary: cargo passes those arguments to the final
compilation only, so the dependencies (and std) built for the plain build are reused and only
that binary is compiled and linked again. The same arguments in rustflags would change every
unit's fingerprint and rebuild the whole graph, std included, for each allocator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kit.build.toolchain import StdPlan
from kit.core.allocators import Allocator, Route
from kit.core.errors import ConfigError, ToolMissingError
from kit.core.runner import Invocation
from kit.core.targets import Target

if TYPE_CHECKING:
    from kit.build.backends.cross import CrossSetup


@dataclass(frozen=True)
class HostFacts:
    """What the backends need to know about this machine (probed once, faked in tests)."""

    arch: str
    zig: bool
    cargo_zigbuild: bool
    cross: bool
    docker: bool
    cargo_auditable: bool = False


@dataclass(frozen=True)
class BuildRequest:
    manifest: Path
    target: Target
    allocator: Allocator
    std: StdPlan
    target_dir: Path
    profile: str = "release"
    bins: tuple[str, ...] = ()
    locked: bool = True
    route: Route = Route.LIBC
    link_args: tuple[str, ...] = ()  # rustc arguments for the one binary in `bins`
    package: str | None = None  # the package of that binary, for `cargo rustc -p`
    cross: CrossSetup | None = None  # cross's image and settings (backend cross only)
    # through `cargo auditable`: the dependency list embedded in the binary (.dep-v0)
    auditable: bool = False
    # this machine's paths -> fixed names in what the binary embeds (panic locations)
    remap: tuple[tuple[str, str], ...] = ()
    # SOURCE_DATE_EPOCH for the compilers: C's __DATE__ and __TIME__ (kit.core.epoch)
    epoch: int = 0

    @property
    def subcommand(self) -> str:
        """cargo's subcommand: `rustc` to pass link arguments to one binary, else `build`."""
        return "rustc" if self.link_args else "build"


class Backend(Protocol):
    name: str

    def unavailable_reason(self, target: Target, std: StdPlan, host: HostFacts) -> str | None:
        """None if this backend can build `target` here, else a sentence saying why not."""
        ...

    def plan(self, req: BuildRequest) -> Invocation: ...


# cargo-auditable (pinned, kit.machine.setup), run as cargo's rustc workspace wrapper: it adds
# the dependency list (.dep-v0) at the final link. `cargo auditable <subcommand>` would do the
# same, but it names the wrapper by its own absolute path (current_exe), and cargo hashes a
# workspace wrapper's path into the -C metadata of every workspace member (cargo's
# compute_metadata), which changes symbol names and so the code's layout: the same commit gave
# other bytes from /home/runner/.cargo/bin than from /root/.cargo/bin (seen in `invoke
# rehearse`). So the kit does what that subcommand does, with the wrapper named as a program on
# PATH: the same name, and the same bytes, wherever it is installed.
AUDITABLE_WRAPPER = "cargo-auditable"


def auditable_env(req: BuildRequest, args: list[str]) -> dict[str, str]:
    """The environment `cargo auditable` gives cargo (cargo-auditable 0.7's cargo_auditable.rs):
    the wrapper, and the cargo arguments its wrapper reads back for its own `cargo metadata`
    (only --config, --locked, --offline and --frozen, before any `--`)."""
    if not req.auditable:
        return {}
    own = args[: args.index("--")] if "--" in args else args
    configs = [own[i + 1] for i, a in enumerate(own[:-1]) if a == "--config"]
    orig = {"offline": False, "locked": req.locked, "frozen": False, "config": configs}
    return {
        "RUSTC_WORKSPACE_WRAPPER": AUDITABLE_WRAPPER,
        "CARGO_AUDITABLE_ORIG_ARGS": json.dumps(orig),
    }


def cargo_args(req: BuildRequest) -> list[str]:
    """Arguments shared by every cargo-driven backend (after the subcommand)."""
    args = [
        "--manifest-path",
        str(req.manifest),
        "--target",
        req.target.triple,
        "--message-format=json-render-diagnostics",
    ]
    args += ["--release"] if req.profile == "release" else ["--profile", req.profile]
    if req.locked:
        args.append("--locked")
    if req.route is Route.FEATURE and req.allocator.feature:
        args += ["--features", req.allocator.feature]
    if req.package and req.link_args:
        args += ["--package", req.package]
    for b in req.bins:
        args += ["--bin", b]
    rustflags = target_rustflags(req)
    if rustflags:
        quoted = ", ".join(json.dumps(f) for f in rustflags)  # a TOML basic string each
        # --config merges with the project's own target rustflags; RUSTFLAGS would replace them.
        args += ["--config", f"target.{req.target.triple}.rustflags = [{quoted}]"]
    if req.std.build_std:
        args.append("-Zbuild-std=std,panic_unwind")
    if req.link_args:
        args += ["--", *req.link_args]
    return args


def target_rustflags(req: BuildRequest) -> list[str]:
    flags: list[str] = []
    if req.target.libc == "gnu":
        flags += ["-C", "target-feature=+crt-static"]  # a static glibc binary (static-pie)
    if req.target.libc == "musl" and req.std.from_source:
        # std built from source has no self-contained crt objects (rcrt1.o, crti.o ...) in the
        # sysroot; zig supplies crt and libc instead (../shared/TOOLCHAIN.md).
        flags += ["-C", "link-self-contained=no"]
    if req.std.sysroot is not None:
        # std built once into the kit's cache (kit.build.sysroot); as a target rustflag it
        # reaches the target's units only, so build scripts and proc macros keep the host std.
        flags.append(f"--sysroot={req.std.sysroot}")
    flags += [f"--remap-path-prefix={path}={name}" for path, name in req.remap]
    return flags


# Paths of the building machine that rustc writes into a binary (file names in panic messages
# and #[track_caller] locations of dependencies, generated code in OUT_DIR), each given a fixed
# name, so the same sources give the same bytes wherever they are built: a laptop, a hosted
# runner (/home/runner/.cargo), a CI container. cargo keeps --remap-path-prefix out of its
# -C metadata hash for this purpose (rust-lang/cargo#6966); the workspace's own files are
# already named relative to it.
def path_remaps(target_dir: Path, cargo_home: Path) -> tuple[tuple[str, str], ...]:
    """`--remap-path-prefix` pairs for the target dir (OUT_DIR's generated code) and cargo's
    home (the registry's sources, git checkouts)."""
    return ((str(target_dir), "/target"), (str(cargo_home), "/cargo"))


def base_env(req: BuildRequest) -> dict[str, str]:
    env = {"CARGO_TARGET_DIR": str(req.target_dir), "SOURCE_DATE_EPOCH": str(req.epoch)}
    if req.std.build_std and not req.std.toolchain.nightly:
        # -Zbuild-std is unstable; a stable toolchain accepts it with RUSTC_BOOTSTRAP=1.
        env["RUSTC_BOOTSTRAP"] = "1"
    if req.route is Route.FEATURE:
        env.update(req.target.allocator_env(req.allocator.name))
    return env


def all_backends() -> dict[str, Backend]:
    from kit.build.backends.cargo import CargoBackend
    from kit.build.backends.cross import CrossBackend
    from kit.build.backends.zigbuild import ZigbuildBackend

    return {b.name: b for b in (CargoBackend(), ZigbuildBackend(), CrossBackend())}


BACKEND_NAMES = ("auto", "cargo", "zigbuild", "cross")


def preference(target: Target) -> tuple[str, ...]:
    # musl wants zig: it links C dependencies (jemalloc, mimalloc) for any arch and works with
    # std built from source. glibc on the host arch is what plain cargo does best.
    return (
        ("zigbuild", "cargo", "cross") if target.libc == "musl" else ("cargo", "zigbuild", "cross")
    )


def select_backend(name: str, target: Target, std: StdPlan, host: HostFacts) -> Backend:
    backends = all_backends()
    if name not in BACKEND_NAMES:
        raise ConfigError(
            f"Unknown backend {name!r}.", hint="Valid backends: " + ", ".join(BACKEND_NAMES)
        )
    if name != "auto":
        backend = backends[name]
        reason = backend.unavailable_reason(target, std, host)
        if reason:
            raise ToolMissingError(f"Backend {name} cannot build {target.triple} here: {reason}")
        return backend
    reasons = []
    for candidate in preference(target):
        backend = backends[candidate]
        reason = backend.unavailable_reason(target, std, host)
        if reason is None:
            return backend
        reasons.append(f"  {candidate}: {reason}")
    raise ToolMissingError(
        f"No backend can build {target.triple} here:\n" + "\n".join(reasons),
        hint="Run `invoke doctor` to see what is missing, and `invoke setup` to install it.",
    )
