"""cross: cargo run inside a container image per target.

Which image, in this order: the user's own choice (CROSS_TARGET_<TRIPLE>_IMAGE in the
environment, or `image` in their Cross.toml), then the option `cross-image`: "cross" takes
cross's own default images (ghcr.io/cross-rs/<triple>, pulled where a registry is reachable),
"kit" the image the kit builds from Debian's packages (kit.build.cross_image), and "auto" (the
default) the kit's image when the engine already has it or no registry answers, else cross's.
The user's Cross.toml is cross's to read, unchanged: image, pre-build, env passthrough and
volumes apply as they would without the kit.

With the kit's image, the image carries its own Rust toolchain with std prebuilt for its
targets. cross, though, names a toolchain after the basename of the host's `rustc --print
sysroot` and then, with rustup, checks it and installs it when `rustup toolchain list` does
not show it (with rustup 1.28's "(active, default)" it never does, so it re-installs the
default toolchain on every run: a download, and a change to the user's rustup home). The kit
gives cross, and cross only, two small stand-ins in the kit's cache:
- `rustc`, which answers `--print sysroot` with an empty directory named after the image (which
  cross mounts as /rust) and runs the host's real rustc for everything else;
- `rustup`, which lists that one toolchain and, when a build fails, says std is installed for
  the image's targets (else cross buries cargo's error under rustup's); anything else it
  refuses, so the user's rustup home is never touched.
CROSS_CUSTOM_TOOLCHAIN=1 skips cross's remaining rustup checks. The crate's dependencies are
fetched on the host first (`cargo fetch --locked`) into the CARGO_HOME cross mounts, and the
build runs with CARGO_NET_OFFLINE=true: nothing is downloaded inside the container.

Traps handled: cross passes the variables named in `passthrough` from the host, and passing an
unset one unsets the image's own value; so when the user's Cross.toml asks cross for build-std
(which needs RUSTC_BOOTSTRAP on a stable toolchain) the kit sets RUSTC_BOOTSTRAP=1 and passes
it through. Settings an allocator needs at build time (jemalloc's page size on aarch64) and
SOURCE_DATE_EPOCH are not CARGO_* variables, which cross passes by itself, so the kit names them
in CROSS_BUILD_ENV_PASSTHROUGH. cross 0.2.5 takes that variable's list instead of Cross.toml's
(config.rs, sum_of_env_toml_values), not as well as it, so the kit repeats the user's lists for
the target in it: their variables still reach the build.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.build.backends import BuildRequest, HostFacts, base_env, cargo_args
from kit.build.toolchain import RustToolchain, StdPlan
from kit.core import fs
from kit.core.crate_config import load_toml
from kit.core.errors import ConfigError
from kit.core.runner import Invocation
from kit.core.targets import Target

CROSS_VERSION = "0.2.5"  # what `invoke setup` installs (cargo install --locked)
CROSS_IMAGE = "ghcr.io/cross-rs/{triple}:" + CROSS_VERSION
TOOLCHAIN_NAME = "static-rust-kit-image"
CONTAINER_TARGET_DIR = "/target"  # where cross mounts the cargo target dir


def image_for(target: Target) -> str:
    """cross's own default image for `target`."""
    return CROSS_IMAGE.format(triple=target.triple)


def image_var(target: Target) -> str:
    return f"CROSS_TARGET_{target.triple.upper().replace('-', '_')}_IMAGE"


# --- the user's cross configuration ---------------------------------------------------------


@dataclass(frozen=True)
class CrossConfig:
    """What the user's Cross.toml says that the kit must know about (cross reads the rest)."""

    path: Path | None = None
    images: Mapping[str, str] = field(default_factory=dict)  # triple -> image (or dockerfile)
    build_std: Mapping[str, bool] = field(default_factory=dict)  # triple or "" (build) -> flag
    # triple or "" (build) -> the variables named in that table's env.passthrough
    passthrough: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    pre_build: bool = False

    def wants_build_std(self, target: Target) -> bool:
        return self.build_std.get(target.triple, self.build_std.get("", False))

    def passthrough_for(self, target: Target) -> tuple[str, ...]:
        """What cross passes for `target`: [build.env]'s list, then [target.<triple>.env]'s."""
        both = [*self.passthrough.get("", ()), *self.passthrough.get(target.triple, ())]
        return tuple(dict.fromkeys(both))


def _image_name(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return str(value["name"])
    return None


def parse_cross_toml(data: Mapping[str, Any], path: Path) -> CrossConfig:
    build = data.get("build", {}) or {}
    targets = data.get("target", {}) or {}
    if not isinstance(build, dict) or not isinstance(targets, dict):
        raise ConfigError(f"{path}: [build] and [target.<triple>] must be tables.")
    images: dict[str, str] = {}
    build_std: dict[str, bool] = {}
    passthrough: dict[str, tuple[str, ...]] = {}
    if names := _passthrough(build):
        passthrough[""] = names
    pre_build = bool(build.get("pre-build"))
    if "build-std" in build:
        build_std[""] = bool(build["build-std"])
    for triple, table in targets.items():
        if not isinstance(table, dict):
            continue
        name = _image_name(table.get("image"))
        if name:
            images[triple] = name
        elif table.get("dockerfile"):
            images[triple] = f"(built by cross from {table['dockerfile']})"
        if "build-std" in table:
            build_std[triple] = bool(table["build-std"])
        if names := _passthrough(table):
            passthrough[triple] = names
        pre_build = pre_build or bool(table.get("pre-build"))
    return CrossConfig(path, images, build_std, passthrough, pre_build)


def _passthrough(table: Mapping[str, Any]) -> tuple[str, ...]:
    names = (table.get("env", {}) or {}).get("passthrough", []) or []
    return tuple(dict.fromkeys(str(n) for n in names))


def read_cross_config(workspace_root: Path, environ: Mapping[str, str]) -> CrossConfig:
    """The configuration cross itself would read: the Cross.toml that CROSS_CONFIG names, else
    the workspace root's, merged over `[workspace.metadata.cross]` and
    `[package.metadata.cross]` in the root's Cargo.toml (the Cross.toml wins, as in cross)."""
    path = Path(environ["CROSS_CONFIG"]) if environ.get("CROSS_CONFIG") else None
    path = path or workspace_root / "Cross.toml"
    layers: list[tuple[Mapping[str, Any], Path]] = []
    manifest = workspace_root / "Cargo.toml"
    if manifest.is_file():
        data = load_toml(manifest)
        for section in ("workspace", "package"):
            meta = (data.get(section, {}) or {}).get("metadata", {}) or {}
            if isinstance(meta.get("cross"), dict):
                layers.append((meta["cross"], manifest))
    if path.is_file():
        layers.append((load_toml(path), path))
    config = CrossConfig()
    for layer, where in layers:
        config = merge(config, parse_cross_toml(layer, where))
    return config


def merge(low: CrossConfig, high: CrossConfig) -> CrossConfig:
    return CrossConfig(
        path=high.path or low.path,
        images={**low.images, **high.images},
        build_std={**low.build_std, **high.build_std},
        passthrough={
            key: tuple(dict.fromkeys([*low.passthrough.get(key, ()), *names]))
            for key, names in {**low.passthrough, **high.passthrough}.items()
        },
        pre_build=low.pre_build or high.pre_build,
    )


# --- which image, which std -----------------------------------------------------------------


@dataclass(frozen=True)
class CrossImage:
    ref: str  # the image cross runs
    origin: str  # why this one
    kit: bool = False  # the kit's own image (its toolchain, the kit's stand-ins)


@dataclass(frozen=True)
class CrossSetup:
    """Everything a cross build needs besides the request, resolved once per run."""

    config: CrossConfig
    setting: str  # option cross-image: auto | kit | cross
    kit_tag: str | None  # the kit image's tag, None where it cannot be built here
    kit_present: bool
    kit_toolchain: RustToolchain | None  # the toolchain inside the kit's image
    registry: bool  # whether cross's default registry answers
    shims: Path  # the kit's stand-ins for rustup and rustc (kit image only)
    environ: Mapping[str, str] = field(default_factory=dict)  # PATH, CROSS_* at planning time

    def image(self, target: Target) -> CrossImage:
        var = image_var(target)
        if self.environ.get(var):
            return CrossImage(self.environ[var], f"the environment ({var})")
        if target.triple in self.config.images:
            return CrossImage(self.config.images[target.triple], str(self.config.path))
        kit_ok = self.kit_tag is not None and target.libc == "musl"
        if self.setting == "kit" or (
            self.setting == "auto" and kit_ok and (self.kit_present or not self.registry)
        ):
            if not kit_ok:
                raise ConfigError(
                    f"The kit's cross image builds musl targets only, and {target.triple} is "
                    f"{target.libc}."
                    if self.kit_tag is not None
                    else "The kit's cross image cannot be built here: it needs Debian's apt "
                    "and mmdebstrap.",
                    hint='Set cross-image = "cross" to use cross\'s own images.',
                )
            assert self.kit_tag is not None
            why = "present in the engine" if self.kit_present else "built from Debian's packages"
            return CrossImage(self.kit_tag, f"the kit's image ({why})", kit=True)
        if self.setting == "cross":
            why = 'cross-image = "cross"'
        elif target.libc != "musl":
            why = "the kit's image is for musl targets"
        elif self.kit_tag is None:
            why = "the kit's image cannot be built here"
        else:
            why = "a registry answers"
        return CrossImage(image_for(target), f"cross's own ({why})")

    def std(self, target: Target, host_toolchains: tuple[RustToolchain, ...]) -> StdPlan:
        """std for a cross build: the kit image's own prebuilt std, else what cross does with
        rustup in its default flow (`rustup target add` for the host's toolchain)."""
        image = self.image(target)
        if image.kit and self.kit_toolchain is not None:
            return StdPlan(target, self.kit_toolchain, "cross-image")
        if not host_toolchains:
            raise ConfigError("cross needs a Rust toolchain on the host, and none was found.")
        return StdPlan(target, host_toolchains[0], "cross")

    def env(self, target: Target, passthrough: tuple[str, ...]) -> dict[str, str]:
        """cross's settings for one build (see the module's docstring)."""
        image = self.image(target)
        env: dict[str, str] = {}
        names = list(passthrough)
        if image.kit:
            env[image_var(target)] = image.ref
            env["CROSS_CUSTOM_TOOLCHAIN"] = "1"
            env["RUSTC"] = str(self.shims / "bin" / "rustc")
            env["PATH"] = f"{self.shims / 'bin'}:{self.environ.get('PATH', os.defpath)}"
            env["XARGO_HOME"] = str(self.shims / "xargo")
            if not self.config.wants_build_std(target):
                env["CARGO_NET_OFFLINE"] = "true"  # fetched on the host first
        if self.config.wants_build_std(target):
            env["RUSTC_BOOTSTRAP"] = "1"
            names.append("RUSTC_BOOTSTRAP")
        if names:
            # cross uses this variable's list instead of Cross.toml's: the user's variable if
            # they set one (cross would have ignored their file's lists anyway), else their
            # file's lists for this target, then the kit's.
            if "CROSS_BUILD_ENV_PASSTHROUGH" in self.environ:
                theirs = self.environ["CROSS_BUILD_ENV_PASSTHROUGH"].split()
            else:
                theirs = list(self.config.passthrough_for(target))
            env["CROSS_BUILD_ENV_PASSTHROUGH"] = " ".join(dict.fromkeys([*theirs, *names]))
        return env


def rustup_shim(toolchain: str, targets: tuple[Target, ...]) -> str:
    components = "".join(f"rust-std-{t.triple} (installed)\\n" for t in targets)
    return (
        "#!/bin/sh\n"
        "# static-rust-kit: rustup as cross sees it when it builds in the kit's image, whose\n"
        "# toolchain is its own (kit/build/backends/cross.py). Only answers; changes nothing.\n"
        'case "$1 $2" in\n'
        f'  "toolchain list") echo "{toolchain}"; exit 0 ;;\n'
        f"  \"component list\") printf '{components}rust-src (installed)\\n'; exit 0 ;;\n"
        "esac\n"
        "echo \"static-rust-kit: cross asked rustup for '$*'; the kit's cross image has its own "
        'toolchain, so the kit does not pass this on to your rustup" >&2\n'
        "exit 1\n"
    )


def rustc_shim(sysroot: Path, real_rustc: Path) -> str:
    return (
        "#!/bin/sh\n"
        "# static-rust-kit: names the kit image's toolchain for cross (its --print sysroot);\n"
        "# everything else is the host's rustc.\n"
        'if [ "$#" -eq 2 ] && [ "$1" = "--print" ] && [ "$2" = "sysroot" ]; then\n'
        f'  echo "{sysroot}"\n'
        "  exit 0\n"
        "fi\n"
        f'exec "{real_rustc}" "$@"\n'
    )


def write_shims(shims: Path, real_rustc: Path, targets: tuple[Target, ...]) -> None:
    sysroot = shims / "toolchains" / TOOLCHAIN_NAME
    sysroot.mkdir(parents=True, exist_ok=True)
    (shims / "xargo").mkdir(exist_ok=True)
    fs.write_bytes(
        shims / "bin" / "rustup", rustup_shim(TOOLCHAIN_NAME, targets).encode(), mode=0o755
    )
    fs.write_bytes(shims / "bin" / "rustc", rustc_shim(sysroot, real_rustc).encode(), mode=0o755)


def host_path(container_path: Path, target_dir: Path) -> Path:
    """A path cargo printed inside the container, as it is on the host (cross mounts the
    target dir at /target)."""
    try:
        rel = container_path.relative_to(CONTAINER_TARGET_DIR)
    except ValueError:
        return container_path
    return target_dir / rel


def without_manifest_path(args: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a == "--manifest-path":
            skip = True
        else:
            out.append(a)
    return out


class CrossBackend:
    name = "cross"

    def unavailable_reason(self, target: Target, std: StdPlan, host: HostFacts) -> str | None:
        if not host.cross:
            return (
                f"cross is not installed (`invoke setup`, or cargo install cross --version "
                f"{CROSS_VERSION} --locked)"
            )
        if not host.docker:
            return "cross runs builds in containers, and no Docker engine is reachable"
        return None

    def plan(self, req: BuildRequest) -> Invocation:
        setup = req.cross
        if setup is None:  # plan_build always resolves one for cross; a direct caller may not
            raise ConfigError("A cross build was planned without its cross setup.")
        # the kit's image carries its own toolchain; cross's own images, the host's (rustup)
        name = req.std.toolchain.name
        toolchain = [f"+{name}"] if name and req.std.std != "cross-image" else []
        req = dataclasses.replace(req, std=dataclasses.replace(req.std, sysroot=None))
        # cargo runs in the container, where the host's paths do not exist: cross mounts the
        # workspace and runs cargo in the directory that matches the host's working directory,
        # so the manifest is found from there, as cargo itself would find it.
        args = without_manifest_path(cargo_args(req))
        env = {k: v for k, v in base_env(req).items() if k != "RUSTC_BOOTSTRAP"}
        passthrough = tuple(k for k in env if not k.startswith("CARGO_"))
        env.update(setup.env(req.target, passthrough))
        return Invocation(("cross", *toolchain, req.subcommand, *args), env, req.manifest.parent)
