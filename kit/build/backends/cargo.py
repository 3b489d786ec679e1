"""Plain cargo with the native linker: host-arch glibc (static via +crt-static), or host-arch
musl where a prebuilt musl std (with its self-contained crt objects) is installed."""

from __future__ import annotations

from kit.build.backends import BuildRequest, HostFacts, auditable_env, base_env, cargo_args
from kit.build.toolchain import StdPlan
from kit.core.runner import Invocation
from kit.core.targets import Target


class CargoBackend:
    name = "cargo"

    def unavailable_reason(self, target: Target, std: StdPlan, host: HostFacts) -> str | None:
        if target.arch != host.arch:
            return f"no native linker for {target.arch} on this {host.arch} host"
        if target.libc == "musl" and std.from_source:
            return (
                "std for musl would be built from source, which has no self-contained crt "
                "objects; the native linker cannot link it (zig can)"
            )
        return None

    def plan(self, req: BuildRequest) -> Invocation:
        args = cargo_args(req)
        argv = [*req.std.toolchain.cargo_argv(), req.subcommand, *args]
        env = {**base_env(req), **auditable_env(req, args)}
        return Invocation(tuple(argv), env, req.manifest.parent)
