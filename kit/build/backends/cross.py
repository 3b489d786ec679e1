"""cross: builds inside a per-target container image (ghcr.io/cross-rs/<triple>).

It needs the image locally or a reachable registry to pull it from, and a rustup that can add
the target inside the container. Where neither holds it is reported as unavailable with the
exact command that would fix it, instead of failing deep inside a docker pull.
"""

from __future__ import annotations

import dataclasses

from kit.build.backends import BuildRequest, HostFacts, base_env, cargo_args
from kit.build.toolchain import StdPlan
from kit.core.runner import Invocation
from kit.core.targets import Target

CROSS_IMAGE = "ghcr.io/cross-rs/{triple}:main"


def image_for(target: Target) -> str:
    return CROSS_IMAGE.format(triple=target.triple)


class CrossBackend:
    name = "cross"

    def unavailable_reason(self, target: Target, std: StdPlan, host: HostFacts) -> str | None:
        if not host.cross:
            return "cross is not installed (cargo install cross --locked)"
        if not host.docker:
            return "cross runs builds in containers, and no Docker engine is reachable"
        image = image_for(target)
        repo = image.rsplit(":", 1)[0]
        if not any(i == image or i.startswith(repo + ":") for i in host.local_images):
            return (
                f"its image {image} is not present locally; pull it where a registry is "
                f"reachable (`docker pull {image}`) or load it with `docker load`"
            )
        return None

    def plan(self, req: BuildRequest) -> Invocation:
        # cross takes cargo's arguments; toolchain selection is cross's own (+toolchain works).
        toolchain = [f"+{req.std.toolchain.name}"] if req.std.toolchain.name else []
        # and its image's own std: no -Zbuild-std, and no --sysroot from the host's cache
        req = dataclasses.replace(req, std=dataclasses.replace(req.std, sysroot=None))
        args = [a for a in cargo_args(req) if not a.startswith("-Zbuild-std")]
        env = {k: v for k, v in base_env(req).items() if k != "RUSTC_BOOTSTRAP"}
        return Invocation(("cross", *toolchain, req.subcommand, *args), env, req.manifest.parent)
