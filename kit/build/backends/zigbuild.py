"""cargo-zigbuild: zig as C compiler and linker, for musl (and glibc) on any architecture."""

from __future__ import annotations

from kit.build.backends import BuildRequest, HostFacts, auditable_argv, base_env, cargo_args
from kit.build.toolchain import StdPlan
from kit.core.runner import Invocation
from kit.core.targets import Target


class ZigbuildBackend:
    name = "zigbuild"

    def unavailable_reason(self, target: Target, std: StdPlan, host: HostFacts) -> str | None:
        missing = [
            n for n, ok in (("cargo-zigbuild", host.cargo_zigbuild), ("zig", host.zig)) if not ok
        ]
        if missing:
            return " and ".join(missing) + " not installed (pip install ziglang cargo-zigbuild)"
        return None

    def plan(self, req: BuildRequest) -> Invocation:
        env = base_env(req)
        if req.subcommand == "rustc":
            # `cargo zigbuild` is only the build subcommand; cargo-zigbuild's own `rustc`
            # subcommand runs cargo from PATH, so the toolchain is chosen as rustup's proxy
            # reads it from the environment.
            argv = ["cargo-zigbuild", "rustc", *cargo_args(req)]
            if req.auditable:
                # cargo-auditable runs "$CARGO <its arguments>" with itself as the rustc
                # workspace wrapper: here $CARGO is cargo-zigbuild, which passes it on to cargo.
                argv = ["cargo-auditable", "auditable", *argv[1:]]
                env["CARGO"] = "cargo-zigbuild"
            if req.std.toolchain.name:
                env["RUSTUP_TOOLCHAIN"] = req.std.toolchain.name
        else:
            argv = [
                *req.std.toolchain.cargo_argv(),
                *auditable_argv(req),
                "zigbuild",
                *cargo_args(req),
            ]
        return Invocation(tuple(argv), env, req.manifest.parent)
