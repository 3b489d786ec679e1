"""The kit's own image for `--backend cross`, built here from Debian's packages: nothing pulled.

cross runs cargo inside a container image per target, by default one of its own from ghcr.io.
Where no registry can be reached (an air-gapped network, this project's machines), the kit
builds an image that does the same job from what it can reach: Debian's archive and the
pinned zig and cargo-zigbuild it already runs on the host (the measured recipe is in
../shared/TOOLCHAIN.md, "cross with an image built here"). How, and why:

- mmdebstrap, Debian's own bootstrapper, makes the root file system: bookworm `minbase` plus
  Debian's Rust whose sysroot carries std's source (rustc-web, cargo-web, rust-web-src), make
  (C dependencies such as jemalloc build with it) and ca-certificates, from the archives apt
  is configured with. With SOURCE_DATE_EPOCH its tarball is bit-identical from run to run
  (debootstrap's is not: timestamps, logs and caches differ), which makes the image
  reproducible: the same inputs give the same layer digest and the same image ID.
- zig (the pinned ziglang wheel's) is C compiler and linker for musl, behind
  `<triple>-cc`/`-c++` wrappers and `zig ar`/`ranlib`, and cargo-zigbuild (its static binary)
  runs them, exactly as `--backend zigbuild` does on the host.
- std for every musl target the kit ships is compiled inside the image while it is built, with
  the recipe of kit.build.sysroot (same profile, same flags) and offline, from the vendor
  directory of std's own source. The image's toolchain then has a prebuilt std: a user's build
  needs no -Zbuild-std, no RUSTC_BOOTSTRAP and no download of std's dependencies.
- Trimmed: dpkg leaves out manuals, translations and documentation (not the copyright
  files), gcc's LTO dump and coverage tools and the sanitizer runtimes; the Rust source keeps
  only library/ (the compiler's source and tools are not needed to build std); zig keeps the
  libc headers and sources of linux/musl only; the musl std built here is installed without
  its .rmeta files, duplicates of the metadata in each .rlib (rustup's std ships none
  either). gcc itself stays: it links build scripts and proc macros for the host. (Debian's
  host std keeps its .rmeta files: without them build scripts do not compile.)
- The tarball becomes a one-layer image with a config dated 1970 (as the kit's own images)
  and is loaded with `docker load`; its tag is a digest of its inputs
  (static-rust-kit/cross:<key>), so the same inputs are never built twice.
"""

from __future__ import annotations

import hashlib
import io
import json
import shlex
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from kit.build import sysroot, toolchain
from kit.build.backends.cross import write_shims
from kit.build.toolchain import RustToolchain
from kit.core import cache, console, engine, fs, runner
from kit.core.errors import CommandFailedError, ToolMissingError
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.targets import SHIPPING_TARGETS, Target

if TYPE_CHECKING:
    from kit.build.plan import BuildPlan

RECIPE = 2  # bump when the way the image is made changes: a new tag, old images left alone
REPO = "static-rust-kit/cross"
PACKAGES = ("rustc-web", "cargo-web", "rust-web-src", "make", "ca-certificates")
# dpkg leaves out manuals, translations and documentation (not the copyright files)
DOC_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)
DPKG_EXCLUDES = (
    *DOC_EXCLUDES,
    # gcc stays (build scripts and proc macros are linked for the host by it), but not what
    # no Rust build runs: its LTO dump tool, coverage tools and sanitizer runtimes
    "path-exclude=/usr/bin/*lto-dump*",
    "path-exclude=/usr/bin/*gcov*",
    "path-exclude=/usr/lib/*/lib*san.so*",
)

# What a build of std needs from the Rust source; the rest (the compiler, its tools) goes.
RUST_SRC = "/usr/lib/rustlib/src/rust"
RUST_SRC_DROP = ("src", "compiler")
# zig's libc sources and headers for other systems, and what no build here uses
ZIG_DROP = (
    "lib/libc/mingw",
    "lib/libc/wasi",
    "lib/libc/glibc",
    "lib/libc/darwin",
    "lib/libc/freebsd",
    "lib/libc/netbsd",
    "lib/libtsan",
    "lib/docs",
    "doc",
)
STD_DIR = "/tmp/kit-std"  # where std is compiled inside the image while it is built
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def zig_arch(target: Target) -> str:
    return target.triple.split("-", 1)[0]


def zig_header_dirs(targets: tuple[Target, ...]) -> set[str]:
    """zig's lib/libc/include directories that musl builds for `targets` read."""
    keep = {"any-linux-any", "generic-musl"}
    for t in targets:
        arch = zig_arch(t)
        keep |= {f"{arch}-linux-musl", f"{'x86' if arch == 'x86_64' else arch}-linux-any"}
    return keep


def env_name(triple: str) -> str:
    return triple.upper().replace("-", "_")


def image_env(targets: tuple[Target, ...]) -> list[str]:
    """The image's environment: cargo links each musl target with zig; `cc`-crate builds of C
    code use the same compilers. zig's cache lives in the mounted target dir, so zig's musl is
    compiled once per project, not per build."""
    env = [f"PATH={PATH}", "ZIG_GLOBAL_CACHE_DIR=/target/.zig-cache"]
    for t in targets:
        up, low = env_name(t.triple), t.triple.replace("-", "_")
        env += [
            f"CARGO_TARGET_{up}_LINKER={t.triple}-cc",
            # std here is built from source: no self-contained crt objects; zig supplies them
            f"CARGO_TARGET_{up}_RUSTFLAGS=-C link-self-contained=no",
            f"CC_{low}={t.triple}-cc",
            f"CXX_{low}={t.triple}-c++",
            f"AR_{low}=zig-ar",
            f"RANLIB_{low}=zig-ranlib",
        ]
    return env


def wrappers(targets: tuple[Target, ...]) -> dict[str, str]:
    """/usr/local/bin scripts: zig as each target's C and C++ compiler, archiver and ranlib."""
    sh = "#!/bin/sh\n"
    files = {
        "zig-ar": sh + 'exec cargo-zigbuild zig ar -- "$@"\n',
        "zig-ranlib": sh + 'exec cargo-zigbuild zig ranlib -- "$@"\n',
    }
    for t in targets:
        for name, lang in (("cc", "cc"), ("c++", "c++")):
            files[f"{t.triple}-{name}"] = (
                sh + f"exec cargo-zigbuild zig {lang} -- -g -fno-sanitize=all "
                f'-target {zig_arch(t)}-linux-musl "$@"\n'
            )
    return files


def std_script(targets: tuple[Target, ...], host_arch: str) -> str:
    """Compiles std for each target inside the image (run in the chroot), offline, with the
    cached-sysroot recipe, and installs the rlibs into the image's own sysroot."""
    env = {
        "HOME": STD_DIR,
        "CARGO_HOME": f"{STD_DIR}/home",
        "CARGO_TARGET_DIR": f"{STD_DIR}/target",
        "CARGO_NET_OFFLINE": "true",
        "RUSTC_BOOTSTRAP": "1",  # -Zbuild-std and profile-rustflags are unstable
        "ZIG_GLOBAL_CACHE_DIR": f"{STD_DIR}/zig-cache",
        "SOURCE_DATE_EPOCH": "0",
        "PATH": PATH,
    }
    lines = ["set -eu", f"cd {STD_DIR}"] + [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    for t in targets:
        flags = ", ".join(f'"{f}"' for f in sysroot.target_flags(t))
        argv = [
            "cargo",
            "zigbuild",
            "--release",
            "--target",
            t.triple,
            "-Zbuild-std=" + ",".join(sysroot.STD_CRATES),
            "--config",
            f"target.{t.triple}.rustflags = [{flags}]",
        ]
        deps = f"{STD_DIR}/target/{t.triple}/release/deps"
        lib = f"/usr/lib/rustlib/{t.triple}/lib"
        lines += [shlex.join(argv), f"mkdir -p {lib}", f"cp {deps}/*.rlib {lib}/"]
        if t.arch == host_arch:  # the probe proves the std links and runs
            lines.append(f"{STD_DIR}/target/{t.triple}/release/{sysroot.PROBE}")
    return "\n".join(lines) + "\n"


VENDOR_CONFIG = (
    "# std's dependencies from the std source's own vendor directory: no download\n"
    '[source.crates-io]\nreplace-with = "std-vendor"\n\n'
    f'[source.std-vendor]\ndirectory = "{RUST_SRC}/library/vendor"\n'
)


@dataclass(frozen=True)
class Sources:
    """The Debian archives the image is made from: those apt is configured with here."""

    suite: str  # bookworm
    lines: tuple[str, ...]  # one-line apt sources: "deb URI SUITE COMPONENTS"
    arch: str  # dpkg architecture: amd64

    def inputs(self) -> dict[str, Any]:
        """What an image made from these archives records of them (part of its key)."""
        return {"suite": self.suite, "sources": list(self.lines), "arch": self.arch}


def parse_indextargets(listing: str, codename: str) -> tuple[str, ...]:
    """apt sources lines for Debian's archives of `codename` (and its -updates, -security),
    from `apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT) $(IDENTIFIER)'`."""
    found: dict[tuple[str, str], list[str]] = {}
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[3] != "Packages":
            continue
        uri, release, component, _ = parts
        if release != codename and not release.startswith(codename + "-"):
            continue
        comps = found.setdefault((uri.rstrip("/"), release), [])
        if component not in comps:
            comps.append(component)
    return tuple(f"deb {uri} {rel} {' '.join(c)}" for (uri, rel), c in sorted(found.items()))


def probe_sources() -> Sources:
    for tool in ("mmdebstrap", "apt-get", "dpkg"):
        if runner.which(tool) is None:
            raise ToolMissingError(
                f"Building the kit's cross image needs {tool}, which is not installed.",
                hint="On Debian: `invoke setup` (as root) installs mmdebstrap; elsewhere, "
                'use cross\'s own images (cross-image = "cross") where a registry is reachable.',
            )
    codename = ""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            codename = line.split("=", 1)[1].strip('"')
    listing = runner.capture(
        [
            "apt-get",
            "indextargets",
            "--format",
            "$(REPO_URI) $(RELEASE) $(COMPONENT) $(IDENTIFIER)",
        ]
    )
    lines = parse_indextargets(listing, codename)
    if not codename or not lines:
        raise ToolMissingError(
            f"apt here has no Debian archive for {codename or 'this release'} to build the "
            "cross image from.",
            hint="Configure Debian's archive in /etc/apt/sources.list(.d) and run "
            "`apt-get update`.",
        )
    return Sources(codename, lines, runner.capture(["dpkg", "--print-architecture"]).strip())


def candidate_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """The version apt would install of each package (`apt-cache policy`'s Candidate)."""
    out = runner.capture(["apt-cache", "policy", *packages])
    versions: dict[str, str] = {}
    current = ""
    for line in out.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = line[:-1]
        elif line.strip().startswith("Candidate:") and current:
            versions[current] = line.split(":", 1)[1].strip()
    return versions


@dataclass(frozen=True)
class Recipe:
    """Everything the image is made from; its tag is a digest of `inputs()`."""

    sources: Sources
    packages: dict[str, str]  # name -> version apt resolves it to
    zig_version: str
    zig_dir: Path  # the zig installation (binary and lib/) copied in
    cargo_zigbuild: Path
    cargo_zigbuild_version: str
    targets: tuple[Target, ...] = SHIPPING_TARGETS

    def inputs(self) -> dict[str, Any]:
        return {
            "recipe": RECIPE,
            **self.sources.inputs(),
            "packages": self.packages,
            "zig": self.zig_version,
            "cargo-zigbuild": self.cargo_zigbuild_version,
            "targets": [t.triple for t in self.targets],
            "std": sysroot.recipe(),
        }

    @property
    def tag(self) -> str:
        return f"{REPO}:{cache.key_of(self.inputs())}"


def probe_recipe() -> Recipe:
    """The recipe from this machine's apt, zig and cargo-zigbuild (starts a few processes)."""
    sources = probe_sources()
    z = toolchain.zig()
    zigbuild = runner.which("cargo-zigbuild")
    version = toolchain.cargo_zigbuild_version()
    if z is None or z.lib_dir is None or zigbuild is None or version is None:
        raise ToolMissingError(
            "The kit's cross image carries the host's zig and cargo-zigbuild, and one of them "
            "is missing here.",
            hint="Run `invoke setup` (pip installs the pinned ziglang and cargo-zigbuild).",
        )
    return Recipe(
        sources=sources,
        packages=candidate_versions(PACKAGES),
        zig_version=z.version,
        zig_dir=z.lib_dir.parent,
        cargo_zigbuild=Path(zigbuild).resolve(),
        cargo_zigbuild_version=version,
    )


# --- building ---------------------------------------------------------------------------------


def stage(recipe: Recipe, root: Path) -> None:
    """The files the image gets on top of Debian's: zig (trimmed), cargo-zigbuild, wrappers."""
    zig = root / "opt" / "zig"
    zig.mkdir(parents=True)
    shutil.copy2(recipe.zig_dir / "zig", zig / "zig")
    shutil.copytree(recipe.zig_dir / "lib", zig / "lib", ignore=shutil.ignore_patterns("*.pyc"))
    for name in ("LICENSE", "README.md"):
        if (recipe.zig_dir / name).is_file():
            shutil.copy2(recipe.zig_dir / name, zig / name)
    for rel in ZIG_DROP:
        shutil.rmtree(zig / rel, ignore_errors=True)
    keep = zig_header_dirs(recipe.targets)
    for d in (zig / "lib/libc/include").iterdir():
        if d.name not in keep:
            shutil.rmtree(d)
    bin_dir = root / "usr" / "local" / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy2(recipe.cargo_zigbuild, bin_dir / "cargo-zigbuild")
    (bin_dir / "zig").symlink_to("/opt/zig/zig")
    for name, text in wrappers(recipe.targets).items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)


def std_crate(recipe: Recipe, crate: Path, host_arch: str) -> None:
    sysroot.write_probe(crate)
    (crate / ".cargo").mkdir()
    (crate / ".cargo" / "config.toml").write_text(VENDOR_CONFIG)
    (crate / "build.sh").write_text(std_script(recipe.targets, host_arch))


def mmdebstrap_argv(recipe: Recipe, staged: Path, crate: Path, out: Path, facts: Path) -> list[str]:
    hooks = [
        f"sync-in {staged} /",
        "rm -rf " + " ".join(f'"$1"{RUST_SRC}/{d}' for d in RUST_SRC_DROP),
        f"copy-in {crate} /tmp",
        f'chroot "$1" sh {STD_DIR}/build.sh',
        f'rm -rf "$1"{STD_DIR}',
        f"chroot \"$1\" dpkg-query -W -f '${{Package}} ${{Version}}\\n' > {facts}",
    ]
    argv = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES)]
    argv += [f"--dpkgopt={o}" for o in DPKG_EXCLUDES]
    argv += ["--skip=output/dev"]  # no device nodes in an image layer
    argv += [f"--customize-hook={h}" for h in hooks]
    return [*argv, recipe.sources.suite, str(out), *recipe.sources.lines]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


EPOCH = "1970-01-01T00:00:00Z"


def image_config(recipe: Recipe, diff_id: str) -> bytes:
    config = {
        "architecture": {"amd64": "amd64", "arm64": "arm64"}.get(recipe.sources.arch, "amd64"),
        "os": "linux",
        "created": EPOCH,
        "config": {
            "Env": image_env(recipe.targets),
            "WorkingDir": "/",
            "Labels": {
                "org.opencontainers.image.title": "static-rust-kit cross image",
                "dev.static-rust-kit.inputs": cache.key_of(recipe.inputs()),
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": EPOCH, "created_by": f"static-rust-kit cross image {RECIPE}"}],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def _add(tar: tarfile.TarFile, name: str, size: int, data: IO[bytes]) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    tar.addfile(info, data)


def write_archive(recipe: Recipe, layer: Path, dest: Path) -> str:
    """A `docker load` tarball (docker-archive) of the one-layer image; its image ID."""
    diff_id = sha256_file(layer)
    config = image_config(recipe, diff_id)
    config_hex = hashlib.sha256(config).hexdigest()
    layer_name = f"{diff_id.split(':', 1)[1]}/layer.tar"
    manifest = json.dumps(
        [{"Config": f"{config_hex}.json", "RepoTags": [recipe.tag], "Layers": [layer_name]}]
    ).encode()
    with fs.atomic_path(dest) as tmp, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, f"{config_hex}.json", len(config), io.BytesIO(config))
        with layer.open("rb") as f:
            _add(tar, layer_name, layer.stat().st_size, f)
        _add(tar, "manifest.json", len(manifest), io.BytesIO(manifest))
    return f"sha256:{config_hex}"


@dataclass(frozen=True)
class Built:
    tag: str
    image_id: str
    layer_bytes: int
    seconds: float
    packages: int


def present(tag: str) -> bool:
    return tag in engine.local_image_tags()


def build(opts: Options, recipe: Recipe, *, log: Path | None = None) -> Built:
    """Build the image for `recipe` and load it into the engine under its tag."""
    started = time.monotonic()
    root = cache.cache_root(opts) / "cross-image"
    root.mkdir(parents=True, exist_ok=True)
    log = log or Paths.of(opts).build_logs / "cross-image.log"
    # A scratch directory (a few GB while it lasts) beside the cache, removed however it ends.
    with tempfile.TemporaryDirectory(prefix=".build-", dir=root) as tmp:
        work = Path(tmp)
        staged, crate = work / "stage", work / "kit-std"
        stage(recipe, staged)
        std_crate(recipe, crate, host_arch_of(recipe))
        layer, facts = work / "rootfs.tar", work / "packages.txt"
        with console.steps("building the cross image", 3, unit="steps") as progress:
            progress.start(f"{recipe.tag}: Debian {recipe.sources.suite}, std for musl")
            runner.run(
                runner.Invocation(
                    tuple(mmdebstrap_argv(recipe, staged, crate, layer, facts)),
                    {"SOURCE_DATE_EPOCH": "0"},
                    work,
                ),
                log_file=log,
                what="mmdebstrap (the cross image's root file system)",
                on_line=lambda stream, line: console.verbose(line),
            )
            progress.tick("root file system")
            archive = work / "image.tar"
            image_id = write_archive(recipe, layer, archive)
            progress.tick("image archive")
            load(archive, recipe.tag)
            progress.done(recipe.tag)
        layer_bytes = layer.stat().st_size
        packages = len(facts.read_text().splitlines())
        fs.write_json(
            root / f"{cache.key_of(recipe.inputs())}.json",
            {
                "tag": recipe.tag,
                "image_id": image_id,
                "layer_bytes": layer_bytes,
                "inputs": recipe.inputs(),
                "installed": facts.read_text().splitlines(),
            },
        )
    return Built(recipe.tag, image_id, layer_bytes, time.monotonic() - started, packages)


def host_arch_of(recipe: Recipe) -> str:
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(recipe.sources.arch, recipe.sources.arch)


def load(archive: Path, tag: str) -> None:
    from docker.errors import APIError

    console.command(f"docker load -i {archive}  (Docker SDK)")
    try:
        with archive.open("rb") as f:
            engine.client(timeout=600).images.load(f)
    except APIError as e:
        raise CommandFailedError(
            f"docker load refused the cross image: {e.explanation or e}."
        ) from None
    if not present(tag):
        raise CommandFailedError(f"docker load did not give the cross image its tag {tag}.")


def ensure(opts: Options) -> str:
    """The kit image's tag, built and loaded first when the engine does not have it."""
    recipe = probe_recipe()
    if present(recipe.tag):
        return recipe.tag
    console.info(f"the cross image {recipe.tag} is not in the engine: building it (once)")
    return build(opts, recipe).tag


def image_toolchain(recipe: Recipe) -> RustToolchain:
    """The Rust toolchain inside the image, as the kit records toolchains (Debian's rustc-web,
    with std prebuilt for the image's targets)."""
    version = recipe.packages.get("rustc-web", "unknown")
    upstream = version.split("+", 1)[0]
    return _toolchain(
        upstream,
        f"rustc {upstream} (Debian rustc-web {version}, in {recipe.tag})",
        recipe.packages.get("cargo-web", "unknown").split("+", 1)[0],
        recipe.targets,
    )


def unprobed() -> tuple[str, RustToolchain]:
    """The kit image's tag and toolchain as a dry run shows them: apt is not asked there."""
    tc = _toolchain("version not probed in a dry run", "", "", SHIPPING_TARGETS)
    return f"{REPO}:<key: apt is not asked in a dry run>", tc


def _toolchain(
    version: str, verbose: str, cargo: str, targets: tuple[Target, ...]
) -> RustToolchain:
    return RustToolchain(
        name="",
        rustc_version=version,
        rustc_verbose=verbose,
        cargo_version=cargo,
        sysroot=Path("/usr"),
        prebuilt_targets=frozenset(t.triple for t in targets),
        has_std_source=True,
    )


def prepare(opts: Options, plans: Iterable[BuildPlan]) -> None:
    """Before cross builds in the kit's image: the image itself (built once), the stand-ins
    cross sees for rustup and rustc, and the crate's dependencies fetched on the host into the
    CARGO_HOME cross mounts, so that nothing is downloaded inside the container."""
    kit_plans = [
        p
        for p in plans
        if p.backend == "cross" and p.request.cross and p.request.cross.image(p.target).kit
    ]
    if not kit_plans:
        return
    setup = kit_plans[0].request.cross
    assert setup is not None
    if runner.is_dry():  # apt is not asked in a dry run: say what a real run would do
        console.info(
            f"the kit's cross image {setup.kit_tag} is built first if the engine lacks it "
            "(invoke cross-image)"
        )
    else:
        ensure(opts)
    host = toolchain.rust_toolchains()
    if not host:
        raise ToolMissingError("cross needs a Rust toolchain on the host, and none was found.")
    real = host[0].sysroot / "bin" / "rustc"
    if not runner.is_dry():
        write_shims(setup.shims, real, SHIPPING_TARGETS)
    if not any(setup.config.wants_build_std(p.target) for p in kit_plans):
        runner.run(
            [
                *host[0].cargo_argv(),
                "fetch",
                "--locked",
                "--manifest-path",
                str(opts.manifest),
            ],
            what="cargo fetch (the crate's dependencies, for the offline cross build)",
        )


def image_command(opts: Options, *, rebuild: bool = False) -> None:
    """`invoke cross-image`: build (or, with `rebuild`, build again) and load the kit's image."""
    if runner.is_dry():  # apt is not asked in a dry run: the command with placeholders
        placeholder = Recipe(
            sources=Sources("<codename>", ("<apt's Debian archives>",), "<arch>"),
            packages={},
            zig_version="",
            zig_dir=Path("<zig>"),
            cargo_zigbuild=Path("<cargo-zigbuild>"),
            cargo_zigbuild_version="",
        )
        tmp = Path("<tmp>")
        argv = mmdebstrap_argv(placeholder, tmp / "stage", tmp / "kit-std", tmp / "rootfs.tar", tmp)
        runner.run(runner.Invocation(tuple(argv), {"SOURCE_DATE_EPOCH": "0"}))
        return
    recipe = probe_recipe()
    if present(recipe.tag) and not rebuild:
        console.success(f"{recipe.tag} is in the engine already (same inputs: nothing to build)")
        return
    before = image_id(recipe.tag) if present(recipe.tag) else None
    built = build(opts, recipe)
    console.success(
        f"{built.tag}: image {built.image_id[:19]}, layer {built.layer_bytes / 1e6:.0f} MB, "
        f"{built.packages} Debian packages, built in {built.seconds:.0f} s"
    )
    if before is not None and before != built.image_id:
        raise CommandFailedError(
            f"The rebuilt image {built.image_id} differs from the one the engine had "
            f"({before}): the same inputs did not give the same image."
        )
    if before is not None:
        console.success(f"reproducible: the rebuild gave the same image ID {before[:19]}")


def image_id(tag: str) -> str:
    return str(engine.client().images.get(tag).id)
