"""The records kit.image writes: the package report, the tags file and the smoke report.

Defined once here and read and written only through kit.core.records, so a report from an
older kit is answered with a RecordError (exit 2) naming the file and both versions. Paths
stored inside are relative to the project root (kit.core.paths.Paths.relative).

    dist/oci/<image>.package.json   PackageReport: digests, sizes, inputs, timings
    dist/oci/<image>.tags.json      ImageTags: the tags and the references they make
    reports/smoke.json              SmokeReport: what `invoke smoke` saw
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.records import Record, read_record
from kit.image.oci import Layout, PlatformImage


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ImageTags(Record):
    KIND = "static-rust-kit/image-tags"
    VERSION = 1
    TITLE = "image tags file"

    image: str
    digest: str  # the image index digest
    version: str  # the Cargo version tag
    immutable: str  # the first 7 hex digits of the digest
    tags: tuple[str, ...]
    refs: tuple[str, ...]  # image:tag
    registry_refs: tuple[str, ...]  # registry/image:tag


class BinaryFacts(_Part):
    path: str  # project-relative
    sha256: str
    bytes: int


class PlatformFacts(_Part):
    platform: str
    manifest_digest: str
    config_digest: str
    layer_digest: str
    layer_diff_id: str
    layer_uncompressed_bytes: int
    layer_compressed_bytes: int
    image_compressed_bytes: int  # manifest + config + compressed layers: what a pull moves
    triple: str | None = None  # None in a merged image: the binaries were packaged elsewhere
    binary: BinaryFacts | None = None


class TarballFacts(_Part):
    path: str  # project-relative
    sha256: str
    bytes: int


class DockerFacts(_Part):
    platform: str  # the image the tarball's manifest.json lists
    image_id: str  # its config digest: the classic store's image ID


class EpochFacts(_Part):
    value: int
    origin: str  # kit.core.epoch's FROM_*, or "merged layouts"


class ReproFacts(_Part):
    checked: bool
    files: int | None = None  # files compared (layout files and the tarball)
    seconds: float | None = None  # the second packaging and the comparison


class Timings(_Part):
    binaries: float  # finding (or building) and gating the binaries
    image: float  # bytes in memory
    write: float
    package: float  # image + write: the packaging cost
    total: float


class PackageReport(Record):
    KIND = "static-rust-kit/package-report"
    VERSION = 2
    TITLE = "package report"

    image: str
    index_digest: str
    tags: ImageTags
    layout: str  # project-relative
    tarball: TarballFacts
    docker: DockerFacts
    annotations: dict[str, str]
    source_date_epoch: EpochFacts
    ca_bundle: str | None  # where the CA bundle came from; None: no bundle
    allocator: str | None  # None in a merged image
    allocator_source: str | None  # kit.bench.winner.ShippingChoice.source
    size_budget_mb: float | None  # None: not enforced
    platforms: tuple[PlatformFacts, ...]
    reproducible: ReproFacts
    merged_from: tuple[str, ...] = ()  # project-relative layout directories
    timings_s: Timings


class ProbeAnswer(_Part):
    """One request of the server probe and the status it got (the body matched)."""

    method: str
    path: str
    status: int
    seconds: float


class SmokeReport(Record):
    KIND = "static-rust-kit/smoke-report"
    VERSION = 2  # 2: the crate's probes (kit.core.probes), no fixed endpoints
    TITLE = "smoke report"

    image: str  # the reference docker load tagged
    index_digest: str
    platform: str
    load_s: float
    image_id: str
    probe: Literal["server", "cli"]  # which of the crate's probes ran
    command: tuple[str, ...]  # the container's arguments after the Entrypoint
    exit_code: int | None
    ready_after_s: float | None = None  # server: until the ready path answered
    answers: tuple[ProbeAnswer, ...] = ()  # server: every request, in order
    stop_s: float | None = None  # server: from the stop signal to its exit
    output: str | None = None  # cli: what it printed on stdout


def describe_smoke(report: SmokeReport) -> str:
    """One line on what the smoke run saw, for the task's summary and the release checklist."""
    if report.probe == "cli":
        return f"`{' '.join(report.command)}` exited {report.exit_code}"
    answered = ", ".join(f"{a.method} {a.path} {a.status}" for a in report.answers)
    return (
        f"ready after {report.ready_after_s}s"
        + (f", {answered}" if answered else "")
        + f", stopped in {report.stop_s}s (exit {report.exit_code})"
    )


def read_package_report(opts: Options) -> PackageReport:
    paths = Paths.of(opts)
    return read_record(PackageReport, paths.package_report(opts.image_name))


def read_image_tags(opts: Options) -> ImageTags:
    paths = Paths.of(opts)
    return read_record(ImageTags, paths.tags(opts.image_name))


def read_smoke_report(opts: Options) -> SmokeReport:
    return read_record(SmokeReport, Paths.of(opts).smoke_report)


def image_tags(opts: Options, layout: Layout) -> ImageTags:
    version, immutable = layout.tags
    return ImageTags(
        image=opts.image_name,
        digest=layout.digest,
        version=version,
        immutable=immutable,
        tags=layout.tags,
        refs=tuple(f"{opts.image_name}:{t}" for t in layout.tags),
        registry_refs=tuple(f"{opts.registry}/{opts.image_name}:{t}" for t in layout.tags),
    )


def platform_facts(
    image: PlatformImage, *, triple: str | None = None, binary: BinaryFacts | None = None
) -> PlatformFacts:
    return PlatformFacts(
        platform=str(image.platform),
        manifest_digest=image.manifest.digest,
        config_digest=image.config.digest,
        layer_digest=image.layers[0].digest,
        layer_diff_id=image.diff_ids[0],
        layer_uncompressed_bytes=image.uncompressed_size,
        layer_compressed_bytes=sum(b.size for b in image.layers),
        image_compressed_bytes=image.compressed_size,
        triple=triple,
        binary=binary,
    )


SUMMARY_COLUMNS = ["platform", "binary", "uncompressed", "compressed image", "manifest"]


def summary_rows(report: PackageReport) -> list[list[str]]:
    return [
        [
            p.platform,
            f"{p.binary.bytes / 1e6:.2f} MB" if p.binary else "-",
            f"{p.layer_uncompressed_bytes / 1e6:.2f} MB",
            f"{p.image_compressed_bytes / 1e6:.2f} MB",
            p.manifest_digest[:19],
        ]
        for p in report.platforms
    ]
