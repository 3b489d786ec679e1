"""Write, read, verify and merge OCI image layouts (image-spec 1.1), byte for byte reproducibly.

Everything here is pure: bytes in, bytes out. kit.image.package gathers the inputs (binary, version,
SOURCE_DATE_EPOCH, git revision) and writes the results atomically.

Layout shape (what `skopeo copy --all docker://... oci:DIR:TAG` also produces):

    index.json      -> one entry per tag (ref.name), each pointing at the image index blob
    blobs/sha256/   -> image index -> one manifest per platform -> config + one gzip layer

Per-platform manifests depend only on that platform's binary and the shared image metadata,
never on which other platforms are present, and the image index lists them in the fixed
PLATFORM_ORDER. So packaging one target per machine and merging the layouts (issue 5, item 4)
gives exactly the index digest that packaging every target on one machine gives.

Reproducibility (issue 4, item 2): sorted tar entries with explicit parent directories, uid/gid
0, fixed modes, mtime = SOURCE_DATE_EPOCH, GNU tar headers (no PAX records, so no atime/ctime),
canonical JSON, and gzip through GzipFile with mtime 0, no file name and a fixed level:
Python 3.11's gzip.compress writes the OS byte of the running platform, GzipFile always 255.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from kit.core.errors import PackageError

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

OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
GZIP_LEVEL = 9
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


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, no leading slash: app/rust_sample
    mode: int
    data: bytes | None = field(default=None, repr=False)  # None: a directory


def _with_parents(entries: Iterable[FileEntry]) -> list[FileEntry]:
    by_path = {e.path.strip("/"): e for e in entries}
    for path in list(by_path):
        for parent in PurePosixPath(path).parents:
            p = str(parent)
            if p != "." and p not in by_path:
                by_path[p] = FileEntry(p, 0o755)
    return [by_path[p] for p in sorted(by_path, key=lambda p: PurePosixPath(p).parts)]


def layer_tar(entries: Iterable[FileEntry], mtime: int) -> bytes:
    """A deterministic tar: sorted, explicit parents, root-owned, GNU headers, fixed mtime."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for e in _with_parents(entries):
            info = tarfile.TarInfo(e.path)
            info.mode = e.mode
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if e.data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
    return buf.getvalue()


def gzip_bytes(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """gzip with a fixed header: mtime 0, no file name, OS byte 255 (not gzip.compress)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=level, mtime=0, filename="") as gz:
        gz.write(data)
    return buf.getvalue()


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
        platform, Blob(MEDIA_MANIFEST, canonical_json(manifest)), config_blob, (layer,), len(tar)
    )


# --- the layout -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """A complete OCI layout in memory: the image index, its platform images and index.json."""

    index: Blob
    images: tuple[PlatformImage, ...]
    index_json: bytes
    tags: tuple[str, ...]

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
    return Layout(index, images, index_json, tags)


def layout_files(layout: Layout) -> dict[str, bytes]:
    """Relative path -> bytes of every file of the layout directory."""
    files = {"oci-layout": OCI_LAYOUT, "index.json": layout.index_json}
    for digest, data in layout.blobs.items():
        files[blob_path(digest)] = data
    return files


def blob_path(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


def write_layout(layout: Layout, dest: Path) -> None:
    """Write the files into `dest` (an empty directory; the caller makes it atomic)."""
    for rel, data in layout_files(layout).items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def docker_manifest(image: PlatformImage, repo_tags: Iterable[str]) -> bytes:
    """Docker's manifest.json (the classic image store's `docker load` format) for one image."""
    return canonical_json(
        [
            {
                "Config": blob_path(image.config.digest),
                "RepoTags": list(repo_tags),
                "Layers": [blob_path(layer.digest) for layer in image.layers],
            }
        ]
    )


def tarball(layout: Layout, image: PlatformImage, *, repo: str, mtime: int) -> bytes:
    """The OCI layout plus Docker's manifest.json naming `image`, as one deterministic tar.

    Docker 20.10's classic image store loads only what manifest.json lists (one platform: the
    host's); containerd-store engines read index.json and its io.containerd.image.name entries.
    """
    files = layout_files(layout)
    files["manifest.json"] = docker_manifest(image, [f"{repo}:{t}" for t in layout.tags])
    return layer_tar((FileEntry(path, 0o644, data) for path, data in files.items()), mtime)


def containerd_name(repo: str) -> str:
    """`rust-sample` -> `docker.io/library/rust-sample`, as containerd wants image names."""
    first, _, rest = repo.partition("/")
    if not rest:
        return f"docker.io/library/{repo}"
    if "." in first or ":" in first or first == "localhost":
        return repo
    return f"docker.io/{repo}"


# --- reading and verifying ------------------------------------------------------------------


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PackageError(f"{what} is not valid JSON ({e}).") from None


def _fetch(get: Callable[[str], bytes | None], desc: Mapping[str, Any], what: str) -> bytes:
    """A blob by descriptor, refusing one whose digest or size does not match."""
    digest = desc.get("digest", "")
    if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
        raise PackageError(f"{what} has an unsupported digest {digest!r}.")
    data = get(blob_path(digest))
    if data is None:
        raise PackageError(f"{what}: blob {digest} is missing.")
    if sha256_digest(data) != digest:
        raise PackageError(
            f"{what}: blob {digest} is corrupted (its content hashes to {sha256_digest(data)}).",
            hint="Package again (invoke package); do not edit files under blobs/.",
        )
    if desc.get("size") != len(data):
        raise PackageError(
            f"{what}: blob {digest} is {len(data)} bytes, descriptor says {desc.get('size')}."
        )
    return data


def read_layout(get: Callable[[str], bytes | None], where: str) -> Layout:
    """Read and verify a layout through `get(relative path)`: every blob reachable from index.json
    must exist and match its digest and size, and each layer must match its diff_id."""
    if get("oci-layout") is None:
        raise PackageError(f"{where} is not an OCI layout (no oci-layout file).")
    raw_index_json = get("index.json")
    if raw_index_json is None:
        raise PackageError(f"{where} is not an OCI layout (no index.json).")
    top = _json(raw_index_json, f"{where}/index.json")
    entries = top.get("manifests") or []
    if not entries:
        raise PackageError(f"{where}/index.json lists no image.")
    digests = {e.get("digest") for e in entries}
    if len(digests) != 1 or entries[0].get("mediaType") != MEDIA_INDEX:
        raise PackageError(f"{where}/index.json must name exactly one image index (by its tags).")
    index_data = _fetch(get, entries[0], f"{where} image index")
    index = _json(index_data, f"{where} image index")
    images = []
    for m in index.get("manifests", []):
        platform = m.get("platform") or {}
        plat = Platform(
            platform.get("os", ""), platform.get("architecture", ""), platform.get("variant")
        )
        what = f"{where} ({plat})"
        manifest_data = _fetch(get, m, f"{what} manifest")
        manifest = _json(manifest_data, f"{what} manifest")
        config_data = _fetch(get, manifest["config"], f"{what} config")
        config = _json(config_data, f"{what} config")
        layers = []
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        if len(diff_ids) != len(manifest.get("layers", [])):
            raise PackageError(
                f"{what}: {len(diff_ids)} diff_ids for {len(manifest['layers'])} layers."
            )
        uncompressed = 0
        for desc, diff_id in zip(manifest["layers"], diff_ids, strict=True):
            data = _fetch(get, desc, f"{what} layer")
            try:
                tar = gzip.decompress(data)
            except (OSError, EOFError) as e:
                raise PackageError(
                    f"{what}: layer {desc['digest']} is not valid gzip ({e})."
                ) from None
            if sha256_digest(tar) != diff_id:
                raise PackageError(
                    f"{what}: layer {desc['digest']} does not match diff_id {diff_id}."
                )
            uncompressed += len(tar)
            layers.append(Blob(desc["mediaType"], data))
        images.append(
            PlatformImage(
                plat,
                Blob(m.get("mediaType", MEDIA_MANIFEST), manifest_data),
                Blob(manifest["config"]["mediaType"], config_data),
                tuple(layers),
                uncompressed,
            )
        )
    tags = tuple(e.get("annotations", {}).get(ANN_REF_NAME, "") for e in entries)
    return Layout(Blob(MEDIA_INDEX, index_data), tuple(images), raw_index_json, tags)


def read_layout_dir(path: Path) -> Layout:
    def get(rel: str) -> bytes | None:
        p = path / rel
        return p.read_bytes() if p.is_file() else None

    if not path.is_dir():
        raise PackageError(f"{path} is not a directory.")
    return read_layout(get, str(path))


def read_tarball(path: Path) -> tuple[Layout, list[dict[str, Any]]]:
    """Verify a tarball written by `tarball`: the layout and Docker's manifest.json."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            files = {
                m.name.removeprefix("./"): tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers()
                if m.isfile()
            }
    except (OSError, tarfile.TarError) as e:
        raise PackageError(f"{path} is not a readable tarball ({e}).") from None
    layout = read_layout(files.get, str(path))
    docker = _json(files.get("manifest.json", b"null"), f"{path}:manifest.json")
    if not isinstance(docker, list) or not docker:
        raise PackageError(f"{path} has no Docker manifest.json; `docker load` would refuse it.")
    for entry in docker:
        for rel in (entry.get("Config"), *entry.get("Layers", [])):
            if rel not in files:
                raise PackageError(
                    f"{path}:manifest.json names {rel}, which is not in the tarball."
                )
    return layout, docker


def merge(layouts: Iterable[Layout], *, repo: str) -> Layout:
    """One multi-platform layout from per-platform ones (issue 5, item 4).

    The images are reused byte for byte and the index is rebuilt exactly as `assemble` builds it
    on one machine, so the index digest is the same as packaging every target at once.
    """
    layouts = list(layouts)
    if not layouts:
        raise PackageError("Nothing to merge.")
    first = _json(layouts[0].index.data, "image index").get("annotations", {})
    images: list[PlatformImage] = []
    for lay in layouts:
        ann = _json(lay.index.data, "image index").get("annotations", {})
        if ann != first:
            diff = sorted(k for k in set(ann) | set(first) if ann.get(k) != first.get(k))
            raise PackageError(
                "The layouts to merge describe different releases "
                f"(they differ in {', '.join(diff)}).",
                hint="Package every target from the same commit, version and SOURCE_DATE_EPOCH.",
            )
        images.extend(lay.images)
    platforms = [str(i.platform) for i in images]
    dupes = sorted({p for p in platforms if platforms.count(p) > 1})
    if dupes:
        raise PackageError(f"More than one layout has an image for {', '.join(dupes)}.")
    return assemble(images, first, version=first.get(ANN_VERSION, ""), repo=repo)
