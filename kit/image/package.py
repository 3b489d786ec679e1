"""`invoke package`: the gated static binaries in a reproducible multi-arch scratch OCI image.

kit.image.inputs gathers what goes in, kit.image.oci makes the bytes (pure) and
kit.image.layout writes them. Every output is computed and verified in memory first and
written atomically afterwards, so a refused binary, a blown size budget or a corrupted input
leaves dist/oci/ exactly as it was. The paths come from kit.core.paths.Paths:

    dist/oci/N/               OCI image layout (index.json, oci-layout, blobs/sha256)
    dist/oci/N.tar            the layout plus Docker's manifest.json: `docker load -i` accepts it
    dist/oci/N.tags.json      ImageTags: the Cargo version and the 7-hex immutable digest tag
    dist/oci/N.package.json   PackageReport: digests, sizes, timings, inputs (written last)
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from kit.bench.winner import ShippingChoice, shipping_allocator
from kit.build.project import Project
from kit.core import console, fs, runner
from kit.core.allocators import Allocator
from kit.core.errors import PackageError
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.records import write_record
from kit.core.targets import Target, host_target, parse_targets
from kit.image import oci
from kit.image.inputs import Input, Release, binary_name, gather_binaries, release_facts
from kit.image.layout import read_layout_dir, tarball, write_layout
from kit.image.report import (
    BinaryFacts,
    DockerFacts,
    EpochFacts,
    ImageTags,
    PackageReport,
    PlatformFacts,
    ReproFacts,
    TarballFacts,
    Timings,
    image_tags,
    platform_facts,
)
from kit.image.repro import check_reproducible

KIT_LABEL = "dev.static-rust-kit"
MERGED = "merged layouts"


# --- the image in memory --------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    layout: oci.Layout
    tar: bytes = field(repr=False)  # the docker-load tarball
    docker: oci.PlatformImage  # the image the tarball's manifest.json lists


def platform_labels(inp: Input, allocator: Allocator) -> dict[str, str]:
    return {f"{KIT_LABEL}.allocator": allocator.name, f"{KIT_LABEL}.target": inp.target.triple}


def docker_image(layout: oci.Layout) -> oci.PlatformImage:
    """The image Docker's manifest.json lists: the host's, else (with a warning) the first."""
    host = oci.Platform.parse(host_target().oci_platform)
    image = layout.image_for(host)
    if image is None:
        image = layout.images[0]
        console.warn(
            f"The image has no {host} platform; the tarball's manifest.json lists "
            f"{image.platform}, which this host runs only under emulation."
        )
    return image


def finish(layout: oci.Layout, *, repo: str, mtime: int) -> Image:
    docker = docker_image(layout)
    return Image(layout, tarball(layout, docker, repo=repo, mtime=mtime), docker)


def build_image(
    opts: Options, release: Release, inputs: list[Input], allocator: Allocator
) -> Image:
    images = [
        oci.platform_image(release.meta, i.platform, i.data, labels=platform_labels(i, allocator))
        for i in inputs
    ]
    layout = oci.assemble(
        images, release.meta.annotations(), version=release.meta.version, repo=opts.image_name
    )
    return finish(layout, repo=opts.image_name, mtime=release.meta.created_epoch)


def check_budget(layout: oci.Layout, budget_mb: float) -> None:
    over = [i for i in layout.images if i.compressed_size > budget_mb * 1e6]
    if over:
        lines = ", ".join(f"{i.platform} {i.compressed_size / 1e6:.2f} MB" for i in over)
        raise PackageError(
            f"The image exceeds the size budget of {budget_mb:g} MB (compressed): {lines}.",
            hint="Raise size-budget-mb (--size-budget-mb, KIT_SIZE_BUDGET_MB or pyproject.toml) "
            "or shrink the binary.",
        )


# --- writing --------------------------------------------------------------------------------


def write_image(out: Paths, name: str, image: Image, tags: ImageTags) -> None:
    """The layout (verified on disk before it goes in place), the tarball and the tags, each
    atomically. The package report is written after them: it describes only what is in place."""
    with fs.atomic_dir(out.layout(name)) as tmp:
        tmp.chmod(0o755)  # mkdtemp makes it 0700; the layout is an artifact others read
        write_layout(image.layout, tmp)
        read_layout_dir(tmp)
    fs.write_bytes(out.tarball(name), image.tar)
    write_record(out.tags(name), tags)


@dataclass(frozen=True)
class Facts:
    """What the report says beyond the image itself."""

    platforms: tuple[PlatformFacts, ...]
    epoch: EpochFacts
    ca_bundle: str | None = None
    choice: ShippingChoice | None = None
    merged_from: tuple[str, ...] = ()


def make_report(
    opts: Options, out: Paths, image: Image, facts: Facts, timings: Timings
) -> PackageReport:
    name = opts.image_name
    return PackageReport(
        image=name,
        index_digest=image.layout.digest,
        tags=image_tags(opts, image.layout),
        layout=out.relative(out.layout(name)),
        tarball=TarballFacts(
            path=out.relative(out.tarball(name)),
            sha256=hashlib.sha256(image.tar).hexdigest(),
            bytes=len(image.tar),
        ),
        docker=DockerFacts(
            platform=str(image.docker.platform), image_id=image.docker.config.digest
        ),
        annotations=dict(image.layout.annotations),
        source_date_epoch=facts.epoch,
        ca_bundle=facts.ca_bundle,
        allocator=facts.choice.allocator.name if facts.choice else None,
        allocator_source=facts.choice.source if facts.choice else None,
        size_budget_mb=opts.size_budget_mb if math.isfinite(opts.size_budget_mb) else None,
        platforms=facts.platforms,
        reproducible=ReproFacts(checked=False),
        merged_from=facts.merged_from,
        timings_s=timings,
    )


class Clock:
    """Marks along one packaging, for the report's timings."""

    def __init__(self) -> None:
        self.started = self.inputs = self.pack = self.built = time.monotonic()

    def timings(self) -> Timings:
        now = time.monotonic()
        return Timings(
            binaries=round(self.inputs - self.started, 3),
            # from gated binaries to bytes in memory, then to files on disk: the packaging cost
            image=round(self.built - self.pack, 3),
            write=round(now - self.built, 3),
            package=round(now - self.pack, 3),
            total=round(now - self.started, 3),
        )


# --- the task -------------------------------------------------------------------------------


def package_into(
    opts: Options,
    project: Project,
    out: Paths,
    *,
    targets: tuple[Target, ...],
    choice: ShippingChoice,
    build: bool = True,
    budget: bool = True,
) -> PackageReport | None:
    """Gather, assemble and write one image into `out`'s dist/oci; None in a dry run.

    `build=False` refuses to build a missing binary (the reproducibility check's second
    packaging must use exactly the binaries the first one used)."""
    clock = Clock()
    name = binary_name(opts, project)
    inputs = gather_binaries(opts, project, targets, choice.allocator, name, build=build)
    clock.inputs = clock.pack = time.monotonic()
    release = release_facts(opts, project, name)
    if runner.is_dry():
        console.info("dry run: the image is not assembled and nothing is written")
        return None
    image = build_image(opts, release, inputs, choice.allocator)
    if budget:
        check_budget(image.layout, opts.size_budget_mb)
    clock.built = time.monotonic()
    write_image(out, opts.image_name, image, image_tags(opts, image.layout))
    by_platform = {str(i.platform): i for i in inputs}
    facts = Facts(
        platforms=tuple(
            _platform_entry(out, img, by_platform[str(img.platform)]) for img in image.layout.images
        ),
        epoch=EpochFacts(value=release.meta.created_epoch, origin=release.epoch_from),
        ca_bundle=release.ca_from,
        choice=choice,
    )
    report = make_report(opts, out, image, facts, clock.timings())
    write_record(out.package_report(opts.image_name), report)
    return report


def _platform_entry(out: Paths, image: oci.PlatformImage, inp: Input) -> PlatformFacts:
    binary = BinaryFacts(path=out.relative(inp.path), sha256=inp.sha256, bytes=len(inp.data))
    return platform_facts(image, triple=inp.target.triple, binary=binary)


def package(
    opts: Options,
    project: Project,
    *,
    targets: str | None = None,
    allocator: str | None = None,
    reproducible: bool = False,
) -> PackageReport | None:
    """`invoke package`: the image of the shipping allocator's binaries; None in a dry run.

    With `reproducible`, a second packaging from scratch in a fresh process (kit.image.repro)
    must give byte-identical files, and the report says how many were compared."""
    choice = shipping_allocator(opts, allocator)
    chosen = parse_targets(targets if targets is not None else list(opts.targets))
    paths = Paths.of(opts)
    report = package_into(opts, project, paths, targets=chosen, choice=choice)
    if report is None or not reproducible:
        return report
    # The report on disk says checked: false until the check has passed; a failed check raises
    # and leaves it so, beside the outputs it describes.
    facts = check_reproducible(opts, paths, choice.allocator, chosen)
    report = report.model_copy(update={"reproducible": facts})
    write_record(paths.package_report(opts.image_name), report)
    return report


def merge(opts: Options, dirs: list[Path]) -> PackageReport | None:
    """`invoke package --merge DIR...`: per-target layouts (one per CI runner) into one image.

    None in a dry run (the layouts are read and verified, nothing is written)."""
    clock = Clock()
    layout = oci.merge([read_layout_dir(d) for d in dirs], repo=opts.image_name)
    check_budget(layout, opts.size_budget_mb)
    created = layout.annotations.get(oci.ANN_CREATED)
    mtime = oci.epoch_of(created, "the merged image") if created else 0
    image = finish(layout, repo=opts.image_name, mtime=mtime)
    clock.built = time.monotonic()
    if runner.is_dry():
        console.info("dry run: the merged image is verified but not written")
        return None
    paths = Paths.of(opts)
    write_image(paths, opts.image_name, image, image_tags(opts, layout))
    facts = Facts(
        platforms=tuple(platform_facts(i) for i in layout.images),
        epoch=EpochFacts(value=mtime, origin=MERGED),
        merged_from=tuple(paths.relative(d) for d in dirs),
    )
    report = make_report(opts, paths, image, facts, clock.timings())
    write_record(paths.package_report(opts.image_name), report)
    return report
