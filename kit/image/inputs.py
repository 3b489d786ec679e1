"""What goes into an image: the gated binaries, the release facts and the CA bundle.

Everything that decides the image bytes is gathered here, and nothing else: the binaries (by
their build records in dist/, built first when missing), the Cargo version, SOURCE_DATE_EPOCH
(kit.core.epoch), the git revision and source URL, and the CA bundle. kit.image.oci turns
them into bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from kit.build.elf import allocator_gate, read_elf, require, static_gates
from kit.build.project import Project
from kit.build.record import BuildRecord, find_build_record
from kit.build.run import build_matrix
from kit.core import console, fs, runner
from kit.core.allocators import Allocator
from kit.core.epoch import source_date_epoch
from kit.core.errors import CommandFailedError, ConfigError, PackageError, ToolMissingError
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.records import RecordError
from kit.core.targets import Target
from kit.image import oci

SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


# --- the binaries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    """One platform's binary: its build record, and the bytes that go into the image."""

    target: Target
    record: BuildRecord
    path: Path
    data: bytes

    @property
    def platform(self) -> oci.Platform:
        return oci.Platform.parse(self.target.oci_platform)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def binary_name(opts: Options, project: Project) -> str:
    """The one binary the image holds: --bin, else the primary package's first binary."""
    if opts.bins:
        if len(opts.bins) > 1:
            raise ConfigError("An image holds one binary; name one with --bin.")
        return opts.bins[0]
    bins = project.primary.bins
    if not bins:
        raise ConfigError(f"{project.manifest} builds no binary.")
    return bins[0]


def reusable(paths: Paths, target: Target, allocator: Allocator, name: str) -> BuildRecord | None:
    """The dist/ record of a build whose binary is still the one the record describes."""
    try:
        record = find_build_record(paths, target.triple, allocator.name, name)
    except RecordError as e:
        console.warn(f"{e.message} Its binary is not reused.")
        return None
    if record is None:
        return None
    binary = record.binary(paths)
    if not binary.is_file() or fs.sha256_of(binary) != record.sha256:
        console.warn(f"{paths.relative(binary)} does not match its build record; not reused.")
        return None
    return record


def check_binary(path: Path, target: Target, allocator: str) -> None:
    """Re-gate right before packaging: static, right architecture, the expected allocator."""
    info = read_elf(path)
    gates = [*static_gates(info, target), allocator_gate(info, allocator)]
    require(gates, f"{path} ({info.describe()}) cannot go into the {target.oci_platform} image; it")


def _build_missing(
    opts: Options,
    project: Project,
    missing: tuple[Target, ...],
    allocator: Allocator,
    name: str,
) -> dict[Target, BuildRecord]:
    console.info(f"building {', '.join(t.triple for t in missing)} ({allocator.name}) first")
    by_triple = {t.triple: t for t in missing}
    return {
        by_triple[r.triple]: r
        for r in build_matrix(opts, project, missing, (allocator,))
        if r.name == name and r.triple in by_triple
    }


def gather_binaries(
    opts: Options,
    project: Project,
    targets: tuple[Target, ...],
    allocator: Allocator,
    name: str,
    *,
    build: bool = True,
) -> list[Input]:
    """The gated binary of each target, reused from dist/ or (with `build`) built first.

    Without `build` a missing binary is a PackageError. In a dry run the builds are only
    shown, so the targets that would be built are left out of the result.
    """
    paths = Paths.of(opts)
    records = {t: reusable(paths, t, allocator, name) for t in targets}
    missing = tuple(t for t, r in records.items() if r is None)
    if missing and build:
        records.update(_build_missing(opts, project, missing, allocator, name))
    inputs = []
    for t in targets:
        record = records[t]
        if record is None:
            if runner.is_dry():
                continue
            where = paths.relative(paths.binary(t.triple, allocator.name, name))
            raise PackageError(
                f"No gated binary {name!r} for {t.triple}/{allocator.name} at {where}"
                + ("." if build else " (this packaging does not build).")
            )
        path = record.binary(paths)
        # What the build found and recorded: the crate's own allocator, if it chose one.
        check_binary(path, t, record.allocator_linked)
        inp = Input(t, record, path, path.read_bytes())
        if inp.sha256 != record.sha256:
            raise PackageError(f"{paths.relative(path)} changed while it was being packaged.")
        inputs.append(inp)
    return inputs


# --- the release facts ----------------------------------------------------------------------


def _git(root: Path, *args: str) -> str:
    try:
        return runner.capture(["git", "-C", str(root), *args])
    except (CommandFailedError, ToolMissingError):
        return ""


def without_credentials(url: str) -> str:
    """A remote URL fit for an image annotation: user and token removed."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        netloc = parts.hostname or ""
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@dataclass(frozen=True)
class CaBundle:
    data: bytes
    origin: str


def ca_bundle() -> CaBundle:
    """The certifi bundle (pinned, so reproducible), else the system's."""
    try:
        import certifi
    except ImportError:
        if not SYSTEM_CA_BUNDLE.is_file():
            raise ConfigError(
                "No CA bundle found (neither the certifi package nor /etc/ssl/certs).",
                hint="pip install certifi, or set ca-bundle = false in pyproject.toml (tool.kit).",
            ) from None
        console.warn(f"certifi is not installed; using the system bundle {SYSTEM_CA_BUNDLE}.")
        return CaBundle(SYSTEM_CA_BUNDLE.read_bytes(), str(SYSTEM_CA_BUNDLE))
    return CaBundle(Path(certifi.where()).read_bytes(), f"certifi {certifi.__version__}")


@dataclass(frozen=True)
class Release:
    """Everything but the binaries that decides the image bytes."""

    meta: oci.ImageMeta
    epoch_from: str
    ca_from: str | None


def release_facts(opts: Options, project: Project, name: str) -> Release:
    """Version, SOURCE_DATE_EPOCH, git revision and source, CA bundle: read afresh each time."""
    version = project.package_of(name).version if name in project.bins else project.primary.version
    root = opts.manifest.parent
    epoch, epoch_from = source_date_epoch(root)
    source = opts.image_source or without_credentials(_git(root, "remote", "get-url", "origin"))
    if not source and not runner.is_dry():
        console.warn(
            "No image source URL (no git remote 'origin'): the "
            f"{oci.ANN_SOURCE} annotation is left out; set image-source in pyproject.toml "
            "(tool.kit) or KIT_IMAGE_SOURCE."
        )
    bundle = ca_bundle() if opts.ca_bundle else None
    meta = oci.ImageMeta(
        title=name,
        version=version,
        created_epoch=epoch,
        revision=_git(root, "rev-parse", "HEAD"),
        source=source,
        port=opts.port,
        ca_bundle=bundle.data if bundle else None,
    )
    return Release(meta, epoch_from, bundle.origin if bundle else None)
