"""OCI image layouts on disk: write one, read one back and verify every byte of it.

kit.image.oci builds a `Layout` in memory; this module turns it into files (the layout
directory and the `docker load` tarball) and reads such files back. Reading checks everything
reachable from index.json: each blob exists and matches its digest and size, each layer
matches its diff_id. The JSON documents are validated against the fields the kit relies on
(pydantic models that let every other field through, as the image spec allows), so a layout
from another tool or a damaged one is answered with a PackageError that names the layout and
what is missing, never with a KeyError.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from kit.core import fs
from kit.core.errors import PackageError
from kit.image.archive import FileEntry, layer_tar
from kit.image.oci import (
    ANN_REF_NAME,
    MEDIA_INDEX,
    Blob,
    Layout,
    Platform,
    PlatformImage,
    canonical_json,
    sha256_digest,
)
from kit.image.referrers import Attachment, fallback_tag, is_fallback_tag, referrers_index

OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
# Only sha256, the one algorithm the kit writes; the check also keeps a crafted digest from
# naming a path outside blobs/.
SHA256_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

Get = Callable[[str], bytes | None]  # a layout file's bytes by relative path, None if absent


# --- writing --------------------------------------------------------------------------------


def blob_path(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


def layout_files(layout: Layout) -> dict[str, bytes]:
    """Relative path -> bytes of every file of the layout directory."""
    files = {"oci-layout": OCI_LAYOUT, "index.json": layout.index_json}
    for digest, data in layout.blobs.items():
        files[blob_path(digest)] = data
    return files


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


# --- the documents, as far as the kit reads them ----------------------------------------------


class _Doc(BaseModel):
    # The image spec lets documents carry more fields than these: keep them, check these.
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    TITLE: ClassVar[str] = ""


class PlatformSpec(_Doc):
    os: str
    architecture: str
    variant: str | None = None


class Descriptor(_Doc):
    media_type: str = Field(alias="mediaType")
    digest: str
    size: int
    platform: PlatformSpec | None = None
    annotations: dict[str, str] = Field(default_factory=dict)


class IndexDoc(_Doc):
    TITLE = "OCI image index"
    manifests: list[Descriptor]
    annotations: dict[str, str] = Field(default_factory=dict)


class ManifestDoc(_Doc):
    TITLE = "OCI image manifest"
    config: Descriptor
    layers: list[Descriptor]


class RootFs(_Doc):
    diff_ids: list[str]


class ConfigDoc(_Doc):
    TITLE = "OCI image config"
    rootfs: RootFs
    created: str | None = None


class DockerEntry(_Doc):
    """One entry of Docker's manifest.json."""

    config: str = Field(alias="Config")
    repo_tags: list[str] | None = Field(default=None, alias="RepoTags")
    layers: list[str] = Field(alias="Layers")


class DockerManifest(RootModel[list[DockerEntry]]):
    TITLE: ClassVar[str] = "Docker manifest.json"


D = TypeVar("D", bound=BaseModel)


def _parse(model: type[D], data: bytes, what: str) -> D:
    """Validate a JSON document; a PackageError listing what is missing or wrong if it fails."""
    try:
        return model.model_validate_json(data)
    except ValidationError as e:
        problems = []
        for err in e.errors()[:5]:
            loc = ".".join(str(p) for p in err["loc"])
            if err["type"] == "missing":
                problems.append(f"{loc} is missing")
            else:
                problems.append(f"{loc + ': ' if loc else ''}{err['msg']}")
        title = getattr(model, "TITLE", "") or "JSON document"
        raise PackageError(f"{what} is not a valid {title}: {'; '.join(problems)}.") from None


# --- reading and verifying ------------------------------------------------------------------


def _fetch(get: Get, desc: Descriptor, what: str) -> bytes:
    """A blob by descriptor, refusing one whose digest or size does not match."""
    digest = desc.digest
    if not SHA256_DIGEST.fullmatch(digest):
        raise PackageError(f"{what} has an unsupported digest {digest!r}.")
    data = get(blob_path(digest))
    if data is None:
        raise PackageError(f"{what}: blob {digest} is missing.")
    if sha256_digest(data) != digest:
        raise PackageError(
            f"{what}: blob {digest} is corrupted (its content hashes to {sha256_digest(data)}).",
            hint="Package again (invoke package); do not edit files under blobs/.",
        )
    if desc.size != len(data):
        raise PackageError(
            f"{what}: blob {digest} is {len(data)} bytes, descriptor says {desc.size}."
        )
    return data


def _read_layer(get: Get, desc: Descriptor, diff_id: str, what: str) -> tuple[Blob, int]:
    """A layer blob and its uncompressed size, checked against its diff_id."""
    data = _fetch(get, desc, f"{what} layer")
    try:
        tar = gzip.decompress(data)
    except (OSError, EOFError) as e:
        raise PackageError(f"{what}: layer {desc.digest} is not valid gzip ({e}).") from None
    if sha256_digest(tar) != diff_id:
        raise PackageError(f"{what}: layer {desc.digest} does not match diff_id {diff_id}.")
    return Blob(desc.media_type, data), len(tar)


def _read_image(get: Get, desc: Descriptor, where: str) -> PlatformImage:
    """One platform's manifest, config and layers, each verified."""
    if desc.platform is None:
        raise PackageError(f"{where} image index: manifest {desc.digest} names no platform.")
    spec = desc.platform
    plat = Platform(spec.os, spec.architecture, spec.variant)
    what = f"{where} ({plat})"
    manifest_data = _fetch(get, desc, f"{what} manifest")
    manifest = _parse(ManifestDoc, manifest_data, f"{what} manifest")
    config_data = _fetch(get, manifest.config, f"{what} config")
    config = _parse(ConfigDoc, config_data, f"{what} config")
    diff_ids = config.rootfs.diff_ids
    if not manifest.layers:
        raise PackageError(f"{what} manifest lists no layer.")
    if len(diff_ids) != len(manifest.layers):
        raise PackageError(
            f"{what}: {len(diff_ids)} diff_ids in the config for {len(manifest.layers)} layers."
        )
    layers = [_read_layer(get, d, i, what) for d, i in zip(manifest.layers, diff_ids, strict=True)]
    return PlatformImage(
        plat,
        Blob(desc.media_type, manifest_data),
        Blob(manifest.config.media_type, config_data),
        tuple(blob for blob, _ in layers),
        tuple(diff_ids),
        sum(size for _, size in layers),
    )


def read_layout(get: Get, where: str) -> Layout:
    """Read and verify a layout through `get(relative path)`: every blob reachable from index.json
    must exist and match its digest and size, and each layer must match its diff_id."""
    if get("oci-layout") is None:
        raise PackageError(f"{where} is not an OCI layout (no oci-layout file).")
    raw_index_json = get("index.json")
    if raw_index_json is None:
        raise PackageError(f"{where} is not an OCI layout (no index.json).")
    top = _parse(IndexDoc, raw_index_json, f"{where}/index.json")
    # entries under a referrers fallback tag (sha256-<hex>) are attachments, not the image
    top.manifests = [
        e for e in top.manifests if not is_fallback_tag(e.annotations.get(ANN_REF_NAME, ""))
    ]
    if not top.manifests:
        raise PackageError(f"{where}/index.json lists no image.")
    if len({e.digest for e in top.manifests}) != 1 or top.manifests[0].media_type != MEDIA_INDEX:
        raise PackageError(f"{where}/index.json must name exactly one image index (by its tags).")
    index_data = _fetch(get, top.manifests[0], f"{where} image index")
    index = _parse(IndexDoc, index_data, f"{where} image index")
    if not index.manifests:
        raise PackageError(f"{where} image index lists no platform image.")
    images = tuple(_read_image(get, m, where) for m in index.manifests)
    tags = tuple(e.annotations.get(ANN_REF_NAME, "") for e in top.manifests)
    return Layout(Blob(MEDIA_INDEX, index_data), images, raw_index_json, tags, index.annotations)


def read_layout_dir(path: Path) -> Layout:
    def get(rel: str) -> bytes | None:
        p = path / rel
        return p.read_bytes() if p.is_file() else None

    if not path.is_dir():
        raise PackageError(f"{path} is not a directory.")
    return read_layout(get, str(path))


def layer_file(image: PlatformImage, name: str) -> bytes | None:
    """A regular file's bytes from a platform image's layers (the last layer that has it)."""
    found = None
    for layer in image.layers:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.data))) as tar:
            try:
                member = tar.getmember(name)
            except KeyError:
                continue
            f = tar.extractfile(member) if member.isfile() else None
            if f is not None:
                found = f.read()
    return found


def own_tags(path: Path) -> dict[str, str]:
    """tag -> digest of the image's own tags (not the attachments' fallback tags)."""
    return {t: d for t, d in index_tags(path).items() if not is_fallback_tag(t)}


# --- attachments (OCI 1.1 referrers, kit.image.referrers) -------------------------------------


def write_attachments(dest: Path, attachments: Sequence[Attachment]) -> list[str]:
    """Add attachments to the layout at `dest`: their blobs, and per subject a fallback tag
    (`sha256-<hex>`) in index.json naming the index of its referrers, replacing the one it
    had. Blobs are content-addressed, so they are written first; index.json last, atomically:
    an interruption leaves the layout as it was, plus unreferenced blobs. The tags written."""
    by_subject: dict[str, list[Attachment]] = {}
    for a in attachments:
        by_subject.setdefault(a.subject["digest"], []).append(a)
    top = json.loads((dest / "index.json").read_bytes())
    tags = {fallback_tag(d): d for d in by_subject}
    entries = [
        e for e in top["manifests"] if e.get("annotations", {}).get(ANN_REF_NAME) not in tags
    ]
    for tag, subject in tags.items():
        index = referrers_index(by_subject[subject])
        for blob in (*(b for a in by_subject[subject] for b in a.blobs), index):
            path = dest / blob_path(blob.digest)
            if not path.is_file():
                fs.write_bytes(path, blob.data)
        entries.append(index.descriptor(annotations={ANN_REF_NAME: tag}))
    top["manifests"] = entries
    fs.write_bytes(dest / "index.json", canonical_json(top))
    return list(tags)


@dataclass(frozen=True)
class Found:
    """An attachment as read back: its manifest (parsed and raw) and its payload, verified."""

    manifest: dict[str, Any]
    manifest_digest: str
    payload: bytes

    @property
    def artifact_type(self) -> str:
        return str(self.manifest.get("artifactType", ""))


def read_attachments(path: Path, subject_digest: str) -> list[Found]:
    """The attachments of `subject_digest` in the layout at `path`, each blob checked against
    its digest and size ([] when the subject has none)."""
    tag = fallback_tag(subject_digest)
    top = _parse(IndexDoc, (path / "index.json").read_bytes(), f"{path}/index.json")
    entry = next((e for e in top.manifests if e.annotations.get(ANN_REF_NAME) == tag), None)
    if entry is None:
        return []

    def get(rel: str) -> bytes | None:
        p = path / rel
        return p.read_bytes() if p.is_file() else None

    what = f"{path} referrers of {subject_digest}"
    index = _parse(IndexDoc, _fetch(get, entry, what), what)
    found = []
    for desc in index.manifests:
        raw = _fetch(get, desc, f"{what}: artifact manifest")
        doc = json.loads(raw)
        manifest = _parse(ManifestDoc, raw, f"{what}: artifact manifest {desc.digest}")
        if len(manifest.layers) != 1:
            raise PackageError(f"{what}: artifact {desc.digest} has {len(manifest.layers)} layers.")
        payload = _fetch(get, manifest.layers[0], f"{what}: artifact {desc.digest} payload")
        found.append(Found(doc, desc.digest, payload))
    return found


def index_tags(path: Path) -> dict[str, str]:
    """tag -> digest, from a layout's index.json (its ref.name annotations); nothing verified."""
    try:
        raw = (path / "index.json").read_bytes()
    except OSError as e:
        raise PackageError(f"{path} is not a readable OCI layout ({e.strerror}).") from None
    top = _parse(IndexDoc, raw, f"{path}/index.json")
    return {
        e.annotations[ANN_REF_NAME]: e.digest
        for e in top.manifests
        if ANN_REF_NAME in e.annotations
    }


def _tar_files(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar.getmembers():
                f = tar.extractfile(member) if member.isfile() else None
                if f is not None:
                    files[member.name.removeprefix("./")] = f.read()
    except (OSError, tarfile.TarError) as e:
        raise PackageError(f"{path} is not a readable tarball ({e}).") from None
    return files


def read_tarball(path: Path) -> tuple[Layout, tuple[DockerEntry, ...]]:
    """Verify a tarball written by `tarball`: the layout and Docker's manifest.json."""
    files = _tar_files(path)
    layout = read_layout(files.get, str(path))
    raw = files.get("manifest.json")
    if raw is None:
        raise PackageError(f"{path} has no Docker manifest.json; `docker load` would refuse it.")
    entries = _parse(DockerManifest, raw, f"{path}:manifest.json").root
    if not entries:
        raise PackageError(f"{path}:manifest.json lists no image; `docker load` would load none.")
    for entry in entries:
        for rel in (entry.config, *entry.layers):
            if rel not in files:
                raise PackageError(
                    f"{path}:manifest.json names {rel}, which is not in the tarball."
                )
    return layout, tuple(entries)
