"""A stand-in for a hosted CI runner's machine, built from Debian's packages: nothing pulled.

The release workflow's rehearsal (kit.release.rehearsal) runs each job in a fresh container of
this image. It holds what the kit's workflow may assume of GitHub's hosted runner images, and
no more:

- Debian bookworm `minbase` from the archives apt is configured with here (mmdebstrap, as the
  kit's cross image: kit.build.cross_image), plus sudo, git, curl, ca-certificates, Python 3
  with venv (actions/setup-python's interpreter is made from it), and gcc, make and pkg-config
  (a hosted image has a C toolchain: build scripts and proc macros link with it).
- An unprivileged user, `runner` (uid 1001, as on GitHub's images), with passwordless sudo.
  Nothing the workflow installs is in the image: apt-get, pip and cargo install run in the
  job, through sudo where they need root.
- rustup on the user's PATH with a `stable` toolchain. rustup cannot download toolchains here,
  so the image carries rustup's binary and settings, and the job's container mounts the
  host's stable toolchain read-only in its place. `rustup target add` then fails as it does
  wherever rustup's server is out of reach, and the workflow goes on as it says it will.
- This machine's trust: its CA bundle is added to the image's (a network that re-signs TLS,
  as this one does, is trusted by the runner the same way it is by the host).

The image is made once per set of inputs (Debian package versions, the bundle, rustup) and
imported with `docker import` under static-rust-kit/runner:<key>.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.build import cross_image
from kit.core import cache, console, engine, runner
from kit.core.errors import CommandFailedError, ToolMissingError
from kit.core.options import Options
from kit.core.paths import Paths

RECIPE = 1  # bump when the way the image is made changes
REPO = "static-rust-kit/runner"
USER, UID = "runner", 1001
HOME = f"/home/{USER}"
PACKAGES = (
    "sudo",
    "ca-certificates",
    "git",
    "curl",
    "python3",
    "python3-venv",
    "gcc",
    "libc6-dev",
    "make",
    "pkg-config",
    "xz-utils",
)
PATH = f"{HOME}/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RUSTUP_PROXIES = ("cargo", "rustc", "rustdoc")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# where the bundle sits in the image: update-ca-certificates keeps it in the system's bundle
IMAGE_CA = "/usr/local/share/ca-certificates/this-machine.crt"


@dataclass(frozen=True)
class Recipe:
    sources: cross_image.Sources
    packages: dict[str, str]
    ca_bundle: Path
    rustup: Path
    toolchain: str  # the host's stable toolchain's name (stable-<host triple>): the default

    def inputs(self) -> dict[str, Any]:
        return {
            "recipe": RECIPE,
            **self.sources.inputs(),
            "packages": self.packages,
            "ca": _digest(self.ca_bundle),
            "rustup": _digest(self.rustup),
            "toolchain": self.toolchain,
        }

    @property
    def tag(self) -> str:
        return f"{REPO}:{cache.key_of(self.inputs())}"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def host_rustup() -> Path:
    rustup = runner.which("rustup")
    if rustup is None:
        raise ToolMissingError("The rehearsal's runner gets the host's rustup, and it is missing.")
    return Path(rustup).resolve()


def host_stable_toolchain() -> Path:
    """The host's rustup `stable` toolchain directory (named stable-<host triple>), mounted
    read-only into each job's container under the same name."""
    host_rustup()
    sysroot = runner.capture(["rustup", "run", "stable", "rustc", "--print", "sysroot"]).strip()
    if not sysroot or not Path(sysroot, "bin", "rustc").is_file():
        raise ToolMissingError(
            "The rehearsal's runner gets the host's rustup `stable` toolchain, and rustup has "
            "none here.",
            hint="rustup toolchain install stable",
        )
    return Path(sysroot)


def probe_recipe() -> Recipe:
    sources = cross_image.probe_sources()
    if not HOST_CA_BUNDLE.is_file():
        raise ToolMissingError(f"No CA bundle at {HOST_CA_BUNDLE} to give the runner.")
    return Recipe(
        sources,
        cross_image.candidate_versions(PACKAGES),
        HOST_CA_BUNDLE,
        host_rustup(),
        host_stable_toolchain().name,
    )


def stage(recipe: Recipe, root: Path) -> None:
    """The files the image gets on top of Debian's: rustup, its settings, the CA bundle."""
    ca = root / IMAGE_CA.lstrip("/")
    ca.parent.mkdir(parents=True)
    shutil.copyfile(recipe.ca_bundle, ca)
    bin_dir = root / HOME.lstrip("/") / ".cargo" / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy2(recipe.rustup, bin_dir / "rustup")
    for proxy in RUSTUP_PROXIES:
        (bin_dir / proxy).symlink_to("rustup")
    rustup_home = root / HOME.lstrip("/") / ".rustup"
    (rustup_home / "toolchains").mkdir(parents=True)
    (rustup_home / "settings.toml").write_text(
        f'version = "12"\ndefault_toolchain = "{recipe.toolchain}"\nprofile = "minimal"\n'
        'auto_self_update = "disable"\n\n[overrides]\n'
    )


def mmdebstrap_argv(recipe: Recipe, staged: Path, out: Path) -> list[str]:
    hooks = [
        f'chroot "$1" useradd --uid {UID} --create-home --shell /bin/bash {USER}',
        f"echo '{USER} ALL=(ALL) NOPASSWD:ALL' > \"$1\"/etc/sudoers.d/{USER}",
        f'chmod 0440 "$1"/etc/sudoers.d/{USER}',
        f"sync-in {staged} /",
        f'chroot "$1" chown -R {USER}:{USER} {HOME}',
        'chroot "$1" update-ca-certificates --fresh',
    ]
    argv = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES)]
    argv += [f"--dpkgopt={o}" for o in cross_image.DOC_EXCLUDES]
    argv += ["--skip=output/dev"]
    argv += [f"--customize-hook={h}" for h in hooks]
    return [*argv, recipe.sources.suite, str(out), *recipe.sources.lines]


def build(opts: Options, recipe: Recipe) -> None:
    started = time.monotonic()
    root = cache.cache_root(opts) / "runner-image"
    root.mkdir(parents=True, exist_ok=True)
    log = Paths.of(opts).build_logs / "runner-image.log"
    with tempfile.TemporaryDirectory(prefix=".build-", dir=root) as tmp:
        work = Path(tmp)
        staged, rootfs = work / "stage", work / "rootfs.tar"
        stage(recipe, staged)
        runner.run(
            runner.Invocation(
                tuple(mmdebstrap_argv(recipe, staged, rootfs)), {"SOURCE_DATE_EPOCH": "0"}, work
            ),
            log_file=log,
            what="mmdebstrap (the rehearsal runner's root file system)",
            on_line=lambda stream, line: console.verbose(line),
        )
        repo, tag = recipe.tag.split(":", 1)
        console.command(f"docker import {rootfs} {recipe.tag}  (Docker SDK)")
        from docker.errors import APIError

        client = engine.client(timeout=600)
        try:
            client.api.import_image_from_file(
                str(rootfs), repository=repo, tag=tag, changes=[f"ENV PATH={PATH}"]
            )
        except APIError as e:
            raise CommandFailedError(
                f"docker import refused the runner image: {e.explanation or e}."
            ) from None
        finally:
            client.close()
    if not cross_image.present(recipe.tag):
        raise CommandFailedError(f"docker import did not tag the runner image {recipe.tag}.")
    console.success(f"{recipe.tag}: built in {time.monotonic() - started:.0f} s")


def ensure(opts: Options) -> str:
    """The runner image's tag, built and imported first when the engine does not have it."""
    recipe = probe_recipe()
    if not cross_image.present(recipe.tag):
        console.info(f"the runner image {recipe.tag} is not in the engine: building it (once)")
        build(opts, recipe)
    return recipe.tag
