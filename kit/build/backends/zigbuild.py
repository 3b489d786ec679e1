"""cargo-zigbuild: zig as C compiler and linker, for musl (and glibc) on any architecture."""

from __future__ import annotations

from kit.build.backends import BuildRequest, HostFacts, auditable_env, base_env, cargo_args
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
        args = cargo_args(req)
        env = {**base_env(req), **auditable_env(req, args)}
        if req.subcommand == "rustc":
            # `cargo zigbuild` is only the build subcommand; cargo-zigbuild's own `rustc`
            # subcommand runs cargo from PATH, so the toolchain is chosen as rustup's proxy
            # reads it from the environment (and cargo inherits the auditable wrapper).
            argv = ["cargo-zigbuild", "rustc", *args]
            if req.std.toolchain.name:
                env["RUSTUP_TOOLCHAIN"] = req.std.toolchain.name
        else:
            argv = [*req.std.toolchain.cargo_argv(), "zigbuild", *args]
        return Invocation(tuple(argv), env, req.manifest.parent)
