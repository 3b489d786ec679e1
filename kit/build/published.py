"""A published crate, by name and exact version, as the project to build (`--crate
NAME@VERSION`, issue 9 section 4): what `ko build <import path>` is for Go.

cargo itself fetches the source, so registry configuration, mirrors and checksums are cargo's:
a throwaway manifest depends on `NAME = "=VERSION"`, `cargo fetch` downloads it into cargo's
registry cache (cargo warns that a binary-only crate has no library, and fetches it anyway),
and `cargo metadata` says where its manifest is (a binary-only crate, which metadata leaves
out, is found where cargo unpacked it). The source is copied into the kit's target
dir (never built inside cargo's cache) and built there with its own Cargo.lock, `--locked`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tempfile
from pathlib import Path

from kit.build import toolchain
from kit.core import console, fs, runner
from kit.core.errors import ConfigError
from kit.core.options import Options, derive_image_name
from kit.core.paths import Paths

_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)@(?P<version>\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)*)$")


def parse_spec(spec: str) -> tuple[str, str]:
    """`NAME@VERSION` with an exact version, or ConfigError saying what is expected."""
    m = _SPEC.match(spec.strip())
    if not m:
        raise ConfigError(
            f"--crate {spec!r} is not NAME@VERSION with an exact version.",
            hint="For example: --crate hexyl@0.16.0 (ranges are refused: builds must be pinned).",
        )
    return m["name"], m["version"]


def source_dir(paths: Paths, name: str, version: str) -> Path:
    return paths.target / "kit-crates" / f"{name}-{version}"


def _throwaway_manifest(work: Path, name: str, version: str) -> Path:
    (work / "src").mkdir()
    (work / "src" / "lib.rs").write_text("")
    manifest = work / "Cargo.toml"
    manifest.write_text(
        '[package]\nname = "kit-fetch"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n'
        f'[dependencies]\n{name} = "={version}"\n'
    )
    return manifest


def _registry_source(manifest: Path, name: str, version: str) -> Path:
    out = runner.capture(
        ["cargo", "metadata", "--format-version", "1", "--manifest-path", str(manifest)]
    )
    for package in json.loads(out)["packages"]:
        if package["name"] == name and package["version"] == version:
            return Path(package["manifest_path"]).parent
    # A binary-only crate (ripgrep) is fetched but left out of the metadata ("ignoring invalid
    # dependency ... missing a lib target"), and cargo has no command that prints where it
    # unpacked it: its registry layout, CARGO_HOME/registry/src/<registry>/NAME-VERSION/
    # (`.cargo-ok` once fully unpacked). Several registries (a mirror): the one unpacked last.
    home = toolchain.cargo_home()
    unpacked = sorted(
        home.glob(f"registry/src/*/{name}-{version}/.cargo-ok"), key=lambda p: p.stat().st_mtime
    )
    if unpacked:
        return unpacked[-1].parent
    raise ConfigError(f"cargo fetched {name} {version} but neither its metadata nor {home} has it.")


def fetch_crate(opts: Options, spec: str) -> Path:
    """The manifest of the published crate's source, fetched once and kept in the target dir."""
    name, version = parse_spec(spec)
    dest = source_dir(Paths.of(opts), name, version)
    if (dest / "Cargo.toml").is_file():
        return dest / "Cargo.toml"
    if runner.is_dry():
        raise ConfigError(
            f"{name} {version} has not been fetched yet, so a dry run cannot plan its build.",
            hint=f"Run it once for real (it fetches into {dest}), then plan with --dry.",
        )
    with tempfile.TemporaryDirectory(prefix="kit-fetch-") as tmp:
        manifest = _throwaway_manifest(Path(tmp), name, version)
        runner.run(["cargo", "fetch", "--manifest-path", str(manifest)], what=f"cargo fetch {spec}")
        source = _registry_source(manifest, name, version)
        if not (source / "Cargo.lock").is_file():
            raise ConfigError(
                f"{name} {version} was published without a Cargo.lock, so it cannot be built "
                "--locked with the versions its authors tested.",
            )
        with fs.atomic_dir(dest) as tmp_dest:
            shutil.copytree(source, tmp_dest, dirs_exist_ok=True)
    console.info(f"{name} {version}: source from crates.io in {Paths.of(opts).relative(dest)}")
    return dest / "Cargo.toml"


def with_crate(opts: Options, spec: str) -> Options:
    """`opts` aimed at the published crate: its manifest, and its name for the image unless
    an image name was chosen (by pyproject, the environment or a flag)."""
    manifest = fetch_crate(opts, spec)
    sources = dict(opts.sources)
    sources["manifest_path"] = f"--crate {spec}"
    changes: dict[str, object] = {"manifest_path": manifest}
    # What the replaced crate's own Cargo.toml said (its smoke probes, image name, ...) is not
    # the published crate's: back to the defaults (labels from kit.core.crate_config).
    defaults = Options()
    for name, source in opts.sources.items():
        if source.endswith((" [package.metadata]", " [workspace.metadata]")):
            changes[name] = getattr(defaults, name)
            sources[name] = "derived" if name == "image_name" else "default"
    if sources.get("image_name", "").startswith("derived"):
        changes["image_name"] = derive_image_name(manifest) or opts.image_name
        sources["image_name"] = f"derived from --crate {spec}"
    return dataclasses.replace(opts, **changes, sources=sources)  # type: ignore[arg-type]
