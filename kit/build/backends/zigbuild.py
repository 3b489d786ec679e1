"""cargo-zigbuild: zig as C compiler and linker, for musl (and glibc) on any architecture."""

from __future__ import annotations

from kit.build.backends import BuildRequest, HostFacts, base_env, cargo_args
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
        argv = [*req.std.toolchain.cargo_argv(), "zigbuild", *cargo_args(req)]
        return Invocation(tuple(argv), base_env(req), req.manifest.parent)
