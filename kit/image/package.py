"""`invoke package`: the gated static binaries in a reproducible multi-arch scratch OCI image.

Gathering the inputs (allocator, binaries, version, SOURCE_DATE_EPOCH, git facts, CA bundle)
happens here; the image bytes come from kit.image.oci, which is pure. Every output is computed and
verified in memory first and written atomically afterwards, so a refused binary, a blown size
budget or a corrupted input leaves dist/oci/ exactly as it was (issue 4, item 8).

Outputs, for image name N:
    dist/oci/N/               OCI image layout (index.json, oci-layout, blobs/sha256)
    dist/oci/N.tar            the layout plus Docker's manifest.json: `docker load -i` accepts it
    dist/oci/N.tags.json      the tags: Cargo version and the 7-hex immutable digest tag
    dist/oci/N.package.json   digests, sizes, timings, inputs
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kit.build.elf import allocator_gate, read_elf, require, static_gates
from kit.build.project import read_project
from kit.build.run import binary_of, build_matrix, dist_path, record_path, sha256_of
from kit.core import console, fs, runner
from kit.core.allocators import Allocator, parse_allocator
from kit.core.errors import CommandFailedError, ConfigError, PackageError, ToolMissingError
from kit.core.options import Options
from kit.core.targets import Target, host_target, parse_targets
from kit.image import oci

PACKAGE_SCHEMA = 1
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
KIT_LABEL = "dev.static-rust-kit"


# --- inputs ---------------------------------------------------------------------------------


def winner_path(opts: Options) -> Path:
    return opts.path(opts.reports_dir) / "bench" / "winner.json"


def resolve_allocator(opts: Options, flag: str | None) -> Allocator:
    """--allocator, else the benchmark's winner, else a ConfigError saying how to get one."""
    if flag:
        return parse_allocator(flag)
    path = winner_path(opts)
    if not path.is_file():
        raise ConfigError(
            f"No allocator chosen: --allocator was not given and {path} does not exist.",
            hint="Run `nox -s bench` to pick the winner, "
            "or pass --allocator mimalloc|jemalloc|system.",
        )
    try:
        doc = json.loads(path.read_text())
        name = doc["allocator"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f"{path} does not name an allocator ({e.__class__.__name__}: {e}).",
            hint='It should hold {"allocator": "mimalloc"}; '
            "rerun `nox -s bench` or pass --allocator.",
        ) from None
    if not isinstance(name, str):
        raise ConfigError(f"{path}: allocator must be a string, got {name!r}.")
    if doc.get("mode") == "quick" or doc.get("outright") is False:
        # Say so: a quick run cannot reach significance, and a tie-break is a weaker choice.
        how = "a quick run" if doc.get("mode") == "quick" else "a decision not made outright"
        console.warn(f"packaging {name}, the bench winner by {how}: {doc.get('reason', '')}")
    return parse_allocator(name)


def source_date_epoch(
    root: Path, environ: os._Environ | dict[str, str] | None = None
) -> tuple[int, str]:
    """(epoch, where it came from): SOURCE_DATE_EPOCH, else the last commit's time, else 0."""
    environ = os.environ if environ is None else environ
    raw = environ.get("SOURCE_DATE_EPOCH")
    if raw is not None and raw.strip():
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(
                f"SOURCE_DATE_EPOCH={raw!r} is not an integer number of seconds."
            ) from None
        if value < 0:
            raise ConfigError(f"SOURCE_DATE_EPOCH={raw!r} is negative.")
        return value, "env SOURCE_DATE_EPOCH"
    out = _git(root, "log", "-1", "--format=%ct")
    if out.isdigit():
        return int(out), "last commit"
    return 0, "default (no commit)"


def _git(root: Path, *args: str) -> str:
    try:
        return runner.capture(["git", "-C", str(root), *args], ok=(0,))
    except (CommandFailedError, ToolMissingError):
        return ""


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        return urlunsplit(parts._replace(netloc=parts.hostname or ""))
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
        certifi = None
    if certifi is not None:
        return CaBundle(Path(certifi.where()).read_bytes(), f"certifi {certifi.__version__}")
    if SYSTEM_CA_BUNDLE.is_file():
        console.warn(f"certifi is not installed; using the system bundle {SYSTEM_CA_BUNDLE}.")
        return CaBundle(SYSTEM_CA_BUNDLE.read_bytes(), str(SYSTEM_CA_BUNDLE))
    raise ConfigError(
        "No CA bundle found (neither the certifi package nor /etc/ssl/certs).",
        hint="pip install certifi, or set ca-bundle = false in pyproject.toml (tool.kit).",
    )


@dataclass(frozen=True)
class Input:
    """One platform's binary, checked and read."""

    target: Target
    record: dict[str, Any]
    path: Path
    data: bytes

    @property
    def platform(self) -> oci.Platform:
        return oci.Platform.parse(self.target.oci_platform)


def binary_name(opts: Options) -> str:
    if opts.bins:
        if len(opts.bins) > 1:
            raise ConfigError("An image holds one binary; name one with --bin.")
        return opts.bins[0]
    bins = read_project(opts.manifest).primary.bins
    if not bins:
        raise ConfigError(f"{opts.manifest} builds no binary.")
    return bins[0]


def existing_record(opts: Options, target: Target, allocator: Allocator, name: str) -> dict | None:
    """The dist/ record of a build, if its binary is still the one the record describes."""
    path = record_path(dist_path(opts, target, allocator, name))
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    binary = binary_of(opts, record)
    if not binary.is_file() or sha256_of(binary) != record.get("sha256"):
        console.warn(f"{binary} does not match its record; building it again.")
        return None
    return record


def check_binary(path: Path, target: Target, allocator: Allocator) -> None:
    """Re-gate right before packaging: static, right architecture, the chosen allocator."""
    info = read_elf(path)
    gates = [*static_gates(info, target), allocator_gate(info, allocator.name)]
    require(gates, f"{path} ({info.describe()}) cannot go into the {target.oci_platform} image; it")


def gather_binaries(
    opts: Options, targets: tuple[Target, ...], allocator: Allocator, name: str
) -> list[Input]:
    records = {t: existing_record(opts, t, allocator, name) for t in targets}
    missing = tuple(t for t, r in records.items() if r is None)
    if missing:
        console.info(f"building {', '.join(t.triple for t in missing)} ({allocator.name}) first")
        for r in build_matrix(opts, missing, (allocator,)):
            if r["name"] == name:
                records[next(t for t in missing if t.triple == r["triple"])] = r
    inputs = []
    for t in targets:
        record = records[t]
        if record is None:
            raise PackageError(f"The build for {t.triple} produced no binary named {name!r}.")
        path = binary_of(opts, record)
        check_binary(path, t, allocator)
        inputs.append(Input(t, record, path, path.read_bytes()))
    return inputs


@dataclass(frozen=True)
class Release:
    """Everything but the binaries that decides the image bytes."""

    meta: oci.ImageMeta
    epoch_from: str
    ca_from: str | None


def release_facts(opts: Options, name: str) -> Release:
    project = read_project(opts.manifest)
    version = project.package_of(name).version if name in project.bins else project.primary.version
    root = opts.manifest.parent
    epoch, epoch_from = source_date_epoch(root)
    source = opts.image_source or _without_credentials(_git(root, "remote", "get-url", "origin"))
    if not source:
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


# --- the image ------------------------------------------------------------------------------


def platform_labels(inp: Input, allocator: Allocator) -> dict[str, str]:
    return {f"{KIT_LABEL}.allocator": allocator.name, f"{KIT_LABEL}.target": inp.target.triple}


def build_layout(
    opts: Options, release: Release, inputs: list[Input], allocator: Allocator
) -> oci.Layout:
    images = [
        oci.platform_image(release.meta, i.platform, i.data, labels=platform_labels(i, allocator))
        for i in inputs
    ]
    return oci.assemble(
        images, release.meta.annotations(), version=release.meta.version, repo=opts.image_name
    )


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


@dataclass(frozen=True)
class Outputs:
    layout_dir: Path
    tarball: Path
    tags_json: Path
    package_json: Path


def outputs(opts: Options) -> Outputs:
    base = opts.path(opts.dist_dir) / "oci"
    n = opts.image_name
    return Outputs(base / n, base / f"{n}.tar", base / f"{n}.tags.json", base / f"{n}.package.json")


def check_budget(layout: oci.Layout, budget_mb: float) -> None:
    over = [i for i in layout.images if i.compressed_size > budget_mb * 1e6]
    if over:
        lines = ", ".join(f"{i.platform} {i.compressed_size / 1e6:.2f} MB" for i in over)
        raise PackageError(
            f"The image exceeds the size budget of {budget_mb:g} MB (compressed): {lines}.",
            hint="Raise size-budget-mb (--size-budget-mb, KIT_SIZE_BUDGET_MB or pyproject.toml) "
            "or shrink the binary.",
        )


def tags_of(opts: Options, layout: oci.Layout) -> dict[str, Any]:
    return {
        "image": opts.image_name,
        "digest": layout.digest,
        "version": layout.tags[0],
        "immutable": layout.tags[1],
        "tags": list(layout.tags),
        "refs": [f"{opts.image_name}:{t}" for t in layout.tags],
        "registry_refs": [f"{opts.registry}/{opts.image_name}:{t}" for t in layout.tags],
    }


def image_facts(image: oci.PlatformImage) -> dict[str, Any]:
    layer = image.layers[0]
    config = json.loads(image.config.data)
    return {
        "platform": str(image.platform),
        "manifest_digest": image.manifest.digest,
        "config_digest": image.config.digest,
        "layer_digest": layer.digest,
        "layer_diff_id": config["rootfs"]["diff_ids"][0],
        "layer_uncompressed_bytes": image.uncompressed_size,
        "layer_compressed_bytes": sum(b.size for b in image.layers),
        "image_compressed_bytes": image.compressed_size,
    }


def write_outputs(out: Outputs, layout: oci.Layout, tar: bytes, tags: dict, report: dict) -> None:
    """Atomic, in dependency order; package.json last: it describes only what is in place."""
    with fs.atomic_dir(out.layout_dir) as tmp:
        tmp.chmod(0o755)  # mkdtemp makes it 0700; the layout is an artifact others read
        oci.write_layout(layout, tmp)
        oci.read_layout_dir(tmp)  # what is on disk is what was meant, before it goes in place
    fs.write_bytes(out.tarball, tar, mode=0o644)
    for path, obj in ((out.tags_json, tags), (out.package_json, report)):
        fs.write_bytes(
            path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode(), mode=0o644
        )


def check_reproducible(make: Any) -> dict[str, Any]:
    """Build the layout twice from scratch into two temp dirs and compare every file's digest."""
    digests = []
    with tempfile.TemporaryDirectory(prefix="kit-repro-") as tmp:
        for n in (1, 2):
            layout, tar = make()
            dest = Path(tmp) / str(n)
            oci.write_layout(layout, dest)
            (dest.parent / f"{n}.tar").write_bytes(tar)
            files = {
                str(p.relative_to(dest)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(dest.rglob("*"))
                if p.is_file()
            }
            files["<tarball>"] = hashlib.sha256((dest.parent / f"{n}.tar").read_bytes()).hexdigest()
            digests.append(files)
    first, second = digests
    differ = sorted(k for k in set(first) | set(second) if first.get(k) != second.get(k))
    if differ:
        raise PackageError(
            "Two packagings of the same inputs differ in: " + ", ".join(differ),
            hint="Something nondeterministic reached the image; see kit/oci.py's notes.",
        )
    console.success(f"reproducible: {len(first)} files byte-identical across two packagings")
    return {"checked": True, "files": len(first)}


# --- the task -------------------------------------------------------------------------------


def package(
    opts: Options,
    *,
    targets: str | None = None,
    allocator: str | None = None,
    reproducible: bool = False,
) -> dict[str, Any]:
    started = time.monotonic()
    alloc = resolve_allocator(opts, allocator)
    chosen = parse_targets(targets if targets is not None else list(opts.targets))
    name = binary_name(opts)
    inputs = gather_binaries(opts, chosen, alloc, name)
    t_inputs = time.monotonic()
    release = release_facts(opts, name)

    def make() -> tuple[oci.Layout, bytes]:
        layout = build_layout(opts, release, inputs, alloc)
        tar = oci.tarball(
            layout, docker_image(layout), repo=opts.image_name, mtime=release.meta.created_epoch
        )
        return layout, tar

    t_pack = time.monotonic()
    layout, tar = make()
    check_budget(layout, opts.size_budget_mb)
    repro = check_reproducible(make) if reproducible else {"checked": False}
    t_built = time.monotonic()

    out = outputs(opts)
    tags = tags_of(opts, layout)
    facts = {str(i.platform): image_facts(i) for i in layout.images}
    platforms = []
    for inp in inputs:
        platforms.append(
            {
                **facts[str(inp.platform)],
                "triple": inp.target.triple,
                "binary": {
                    "path": str(inp.path),
                    "sha256": inp.record["sha256"],
                    "bytes": len(inp.data),
                },
            }
        )
    report = _report(opts, layout, tar, tags, out, platforms, release, alloc, repro)
    write_outputs(
        out, layout, tar, tags, report_with_times(report, started, t_inputs, t_pack, t_built)
    )
    return json.loads(out.package_json.read_text())


def report_with_times(
    report: dict, started: float, t_inputs: float, t_pack: float, t_built: float
) -> dict:
    now = time.monotonic()
    return {
        **report,
        "timings_s": {
            "binaries": round(t_inputs - started, 3),
            # from gated binaries to bytes in memory, then to files on disk: the packaging cost
            "image": round(t_built - t_pack, 3),
            "write": round(now - t_built, 3),
            "package": round(now - t_pack, 3),
            "total": round(now - started, 3),
        },
    }


def _report(
    opts: Options,
    layout: oci.Layout,
    tar: bytes,
    tags: dict,
    out: Outputs,
    platforms: list[dict],
    release: Release | None,
    alloc: Allocator | None,
    repro: dict,
    merged_from: list[str] | None = None,
) -> dict[str, Any]:
    docker = docker_image_of(tar, layout)
    annotations = json.loads(layout.index.data).get("annotations", {})
    return {
        "schema": PACKAGE_SCHEMA,
        "image": opts.image_name,
        "index_digest": layout.digest,
        "tags": tags,
        "layout": str(out.layout_dir),
        "tarball": {
            "path": str(out.tarball),
            "sha256": hashlib.sha256(tar).hexdigest(),
            "bytes": len(tar),
        },
        "docker": {"platform": str(docker.platform), "image_id": docker.config.digest},
        "annotations": annotations,
        "source_date_epoch": {
            "value": release.meta.created_epoch if release else None,
            "from": release.epoch_from if release else "merged layouts",
        },
        "ca_bundle": release.ca_from if release else None,
        "allocator": alloc.name if alloc else None,
        "size_budget_mb": opts.size_budget_mb,
        "platforms": platforms,
        "reproducible": repro,
        **({"merged_from": merged_from} if merged_from else {}),
    }


def docker_image_of(tar: bytes, layout: oci.Layout) -> oci.PlatformImage:
    """The image the tarball's manifest.json lists (found again from the bytes, not assumed)."""
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as t:
        entry = json.loads(t.extractfile("manifest.json").read())[0]  # type: ignore[union-attr]
    config_digest = "sha256:" + entry["Config"].rsplit("/", 1)[1]
    return next(i for i in layout.images if i.config.digest == config_digest)


def merge(opts: Options, dirs: list[Path]) -> dict[str, Any]:
    """`invoke package --merge DIR...`: per-target layouts (one per CI runner) into one image."""
    started = time.monotonic()
    layouts = [oci.read_layout_dir(d) for d in dirs]
    layout = oci.merge(layouts, repo=opts.image_name)
    check_budget(layout, opts.size_budget_mb)
    epoch = json.loads(layout.images[0].config.data).get("created")
    mtime = _epoch_of(epoch)
    tar = oci.tarball(layout, docker_image(layout), repo=opts.image_name, mtime=mtime)
    t_built = time.monotonic()
    out = outputs(opts)
    tags = tags_of(opts, layout)
    platforms = [image_facts(i) for i in layout.images]
    report = _report(
        opts,
        layout,
        tar,
        tags,
        out,
        platforms,
        None,
        None,
        {"checked": False},
        merged_from=[str(d) for d in dirs],
    )
    report["source_date_epoch"]["value"] = mtime
    write_outputs(
        out, layout, tar, tags, report_with_times(report, started, started, started, t_built)
    )
    return json.loads(out.package_json.read_text())


def _epoch_of(rfc3339: str | None) -> int:
    if not rfc3339:
        return 0
    return int(
        dt.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    )


def summary_rows(report: dict) -> list[list[str]]:
    rows = []
    for p in report["platforms"]:
        binary = p.get("binary", {}).get("bytes")
        rows.append(
            [
                p["platform"],
                f"{binary / 1e6:.2f} MB" if binary else "-",
                f"{p['layer_uncompressed_bytes'] / 1e6:.2f} MB",
                f"{p['image_compressed_bytes'] / 1e6:.2f} MB",
                p["manifest_digest"][:19],
            ]
        )
    return rows


SUMMARY_COLUMNS = ["platform", "binary", "uncompressed", "compressed image", "manifest"]
