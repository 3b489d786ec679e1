"""Build OCI images (image-spec 1.1) in memory, byte for byte reproducibly.

Everything here is pure: bytes in, bytes out. kit.image.inputs gathers what goes in (binary,
version, SOURCE_DATE_EPOCH, git revision, CA bundle), kit.image.layout writes and reads the
result on disk, and kit.image.package runs the task.

Layout shape (what `skopeo copy --all docker://... oci:DIR:TAG` also produces):

    index.json      -> one entry per tag (ref.name), each pointing at the image index blob
    blobs/sha256/   -> image index -> one manifest per platform -> config + one gzip layer

Per-platform manifests depend only on that platform's binary and the shared image metadata,
never on which other platforms are present, and the image index lists them in the fixed
PLATFORM_ORDER. So packaging one target per machine and merging the layouts (`merge`) gives
exactly the index digest that packaging every target on one machine gives.

Reproducibility: canonical JSON (sorted keys, no whitespace), every time from
SOURCE_DATE_EPOCH, and layers made by kit.image.archive (deterministic tar and gzip).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kit.core.errors import PackageError
from kit.image.archive import FileEntry, gzip_bytes, layer_tar

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

ANN_CREATED = "org.opencontainers.image.created"
ANN_SOURCE = "org.opencontainers.image.source"
ANN_REVISION = "org.opencontainers.image.revision"
ANN_VERSION = "org.opencontainers.image.version"
ANN_TITLE = "org.opencontainers.image.title"
ANN_REF_NAME = "org.opencontainers.image.ref.name"
# containerd-store engines (docker load on Docker >= 25 with the containerd snapshotter) name an
# image from this annotation on index.json entries; the classic store reads manifest.json.
ANN_CONTAINERD_NAME = "io.containerd.image.name"

USER = "65532:65532"  # numeric, so the image needs no /etc/passwd (distroless' "nonroot")
APP_DIR = "app"
CA_PATH = "etc/ssl/certs/ca-certificates.crt"
SHORT_DIGEST_LEN = 7

# The fixed order of platforms in an image index (kit.core.targets.SHIPPING_TARGETS order).
PLATFORM_ORDER: tuple[tuple[str, str, str | None], ...] = (
    ("linux", "amd64", None),
    ("linux", "arm64", "v8"),
)


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: one byte string per value."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rfc3339(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_of(created: str, what: str) -> int:
    """The inverse of `rfc3339`, for a `created` time read from an image."""
    try:
        stamp = dt.datetime.fromisoformat(created)
    except ValueError:
        raise PackageError(f"{what}: created {created!r} is not an RFC 3339 time.") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return int(stamp.timestamp())


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, spec: str) -> Platform:
        """`linux/arm64/v8` -> Platform("linux", "arm64", "v8")."""
        parts = spec.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise PackageError(f"{spec!r} is not an OCI platform (os/arch[/variant]).")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def as_dict(self) -> dict[str, str]:
        d = {"os": self.os, "architecture": self.architecture}
        if self.variant:
            d["variant"] = self.variant
        return d

    @property
    def sort_key(self) -> tuple[int, str]:
        key = (self.os, self.architecture, self.variant)
        rank = PLATFORM_ORDER.index(key) if key in PLATFORM_ORDER else len(PLATFORM_ORDER)
        return rank, str(self)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class ImageMeta:
    """What every platform image of one release shares (nothing platform-specific)."""

    title: str  # the binary's name; also its file name in /app
    version: str
    created_epoch: int
    revision: str = ""
    source: str = ""
    port: int = 8080
    ca_bundle: bytes | None = field(default=None, repr=False)
    env: tuple[str, ...] = ()

    @property
    def entrypoint(self) -> str:
        return f"/{APP_DIR}/{self.title}"

    def annotations(self) -> dict[str, str]:
        ann = {
            ANN_CREATED: rfc3339(self.created_epoch),
            ANN_REVISION: self.revision,
            ANN_SOURCE: self.source,
            ANN_TITLE: self.title,
            ANN_VERSION: self.version,
        }
        return {k: v for k, v in ann.items() if v}


# --- the layer ------------------------------------------------------------------------------


def rootfs_entries(meta: ImageMeta, binary: bytes) -> list[FileEntry]:
    entries = [
        FileEntry(f"{APP_DIR}/{meta.title}", 0o555, binary),
        FileEntry("tmp", 0o1777),
    ]
    if meta.ca_bundle is not None:
        entries.append(FileEntry(CA_PATH, 0o444, meta.ca_bundle))
    return entries


# --- one platform image -----------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformImage:
    platform: Platform
    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]
    diff_ids: tuple[str, ...]  # sha256 of each layer's uncompressed tar (the config's rootfs)
    uncompressed_size: int = 0  # sum of the layers' tar sizes

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (self.manifest, self.config, *self.layers)

    @property
    def compressed_size(self) -> int:
        """What a registry pull transfers: manifest + config + compressed layers."""
        return sum(b.size for b in self.blobs)


def image_env(meta: ImageMeta) -> list[str]:
    env = [f"PORT={meta.port}", *meta.env]
    if meta.ca_bundle is not None:
        env.append(f"SSL_CERT_FILE=/{CA_PATH}")
    return env


def platform_image(
    meta: ImageMeta, platform: Platform, binary: bytes, *, labels: Mapping[str, str] | None = None
) -> PlatformImage:
    """The manifest, config and layer of one platform. Depends on nothing but its arguments."""
    tar = layer_tar(rootfs_entries(meta, binary), meta.created_epoch)
    layer = Blob(MEDIA_LAYER_GZIP, gzip_bytes(tar))
    created = rfc3339(meta.created_epoch)
    config = {
        "created": created,
        **platform.as_dict(),
        "config": {
            "User": USER,
            "ExposedPorts": {f"{meta.port}/tcp": {}},
            "Env": image_env(meta),
            "Entrypoint": [meta.entrypoint],
            "WorkingDir": "/",
            "Labels": {**meta.annotations(), **(labels or {})},
        },
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]},
        "history": [
            {
                "created": created,
                "created_by": f"static-rust-kit: COPY {meta.title} {meta.entrypoint} (0555), "
                f"/tmp (1777){', CA bundle' if meta.ca_bundle is not None else ''}",
            }
        ],
    }
    config_blob = Blob(MEDIA_CONFIG, canonical_json(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [layer.descriptor()],
        "annotations": meta.annotations(),
    }
    return PlatformImage(
        platform,
        Blob(MEDIA_MANIFEST, canonical_json(manifest)),
        config_blob,
        (layer,),
        (sha256_digest(tar),),
        len(tar),
    )


# --- the layout -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """A complete OCI layout in memory: the image index, its platform images and index.json."""

    index: Blob
    images: tuple[PlatformImage, ...]
    index_json: bytes
    tags: tuple[str, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)  # the image index's

    @property
    def digest(self) -> str:
        return self.index.digest

    @property
    def blobs(self) -> dict[str, bytes]:
        out = {self.index.digest: self.index.data}
        for img in self.images:
            out.update({b.digest: b.data for b in img.blobs})
        return dict(sorted(out.items()))

    def image_for(self, platform: Platform) -> PlatformImage | None:
        for img in self.images:
            if (img.platform.os, img.platform.architecture) == (platform.os, platform.architecture):
                return img
        return None


def short_tag(digest: str) -> str:
    """The immutable tag: the first 7 hex characters of the image index digest."""
    return digest.split(":", 1)[1][:SHORT_DIGEST_LEN]


def image_index(images: Iterable[PlatformImage], annotations: Mapping[str, str]) -> Blob:
    ordered = sorted(images, key=lambda i: i.platform.sort_key)
    seen = [str(i.platform) for i in ordered]
    if len(set(seen)) != len(seen):
        raise PackageError(f"Two images for the same platform: {', '.join(seen)}.")
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [i.manifest.descriptor(platform=i.platform.as_dict()) for i in ordered],
        "annotations": dict(annotations),
    }
    return Blob(MEDIA_INDEX, canonical_json(index))


def assemble(
    images: Iterable[PlatformImage], annotations: Mapping[str, str], *, version: str, repo: str
) -> Layout:
    """The image index over `images` (fixed platform order) and an index.json naming it."""
    images = tuple(sorted(images, key=lambda i: i.platform.sort_key))
    if not images:
        raise PackageError("No platform image to put in the layout.")
    index = image_index(images, annotations)
    tags = (version, short_tag(index.digest))
    entries = [
        index.descriptor(
            annotations={ANN_REF_NAME: t, ANN_CONTAINERD_NAME: f"{containerd_name(repo)}:{t}"}
        )
        for t in tags
    ]
    index_json = canonical_json(
        {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": entries}
    )
    return Layout(index, images, index_json, tags, dict(annotations))


def containerd_name(repo: str) -> str:
    """`my-app` -> `docker.io/library/my-app`, as containerd wants image names."""
    first, _, rest = repo.partition("/")
    if not rest:
        return f"docker.io/library/{repo}"
    if "." in first or ":" in first or first == "localhost":
        return repo
    return f"docker.io/{repo}"


def merge(layouts: Iterable[Layout], *, repo: str) -> Layout:
    """One multi-platform layout from per-platform ones.

    The images are reused byte for byte and the index is rebuilt exactly as `assemble` builds it
    on one machine, so the index digest is the same as packaging every target at once.
    """
    layouts = list(layouts)
    if not layouts:
        raise PackageError("Nothing to merge.")
    first = dict(layouts[0].annotations)
    images: list[PlatformImage] = []
    for lay in layouts:
        if dict(lay.annotations) != first:
            diff = sorted(
                k
                for k in set(lay.annotations) | set(first)
                if lay.annotations.get(k) != first.get(k)
            )
            raise PackageError(
                "The layouts to merge describe different releases "
                f"(they differ in {', '.join(diff)}).",
                hint="Package every target from the same commit, version and SOURCE_DATE_EPOCH.",
            )
        images.extend(lay.images)
    version = first.get(ANN_VERSION, "")
    if not version:
        raise PackageError(
            f"The layouts to merge carry no {ANN_VERSION} annotation, so there is no version tag.",
            hint="Merge layouts written by `invoke package`.",
        )
    platforms = [str(i.platform) for i in images]
    dupes = sorted({p for p in platforms if platforms.count(p) > 1})
    if dupes:
        raise PackageError(f"More than one layout has an image for {', '.join(dupes)}.")
    return assemble(images, first, version=version, repo=repo)
