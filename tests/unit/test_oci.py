"""kit.image.archive, kit.image.oci and kit.image.layout: bytes in, bytes out, no processes."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from kit.core.errors import PackageError
from kit.image import archive, layout, oci

AMD64 = oci.Platform.parse("linux/amd64")
ARM64 = oci.Platform.parse("linux/arm64/v8")
EPOCH = 1_700_000_000
X86_ELF = b"\x7fELF x86_64 binary"
ARM_ELF = b"\x7fELF aarch64 binary"


def meta(**kw: Any) -> oci.ImageMeta:
    base: dict[str, Any] = dict(
        title="app",
        version="1.2.3",
        created_epoch=EPOCH,
        revision="0123abc",
        source="https://example.invalid/app",
        ca_bundle=b"-----BEGIN CERTIFICATE-----\n",
    )
    return oci.ImageMeta(**{**base, **kw})


def images(m: oci.ImageMeta | None = None) -> list[oci.PlatformImage]:
    m = m or meta()
    return [oci.platform_image(m, ARM64, ARM_ELF), oci.platform_image(m, AMD64, X86_ELF)]


def make_layout(imgs: list[oci.PlatformImage] | None = None, m: oci.ImageMeta | None = None):
    m = m or meta()
    return oci.assemble(imgs or images(m), m.annotations(), version=m.version, repo="app")


def members(tar_bytes: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as t:
        return t.getmembers()


# --- deterministic bytes ----------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8():
    assert (
        oci.canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}})
        == '{"a":{"c":"é","d":[1,2]},"b":1}'.encode()
    )


def test_gzip_header_is_fixed():
    gz = archive.gzip_bytes(b"x" * 1000)
    # magic, deflate, no flags (no file name), mtime 0, XFL 2 (level 9), OS 255 (unknown)
    assert gz[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    assert gzip.decompress(gz) == b"x" * 1000


def test_layer_tar_is_sorted_with_parents_fixed_owner_modes_and_mtime():
    entries = [
        archive.FileEntry("tmp", 0o1777),
        archive.FileEntry("etc/ssl/certs/ca.crt", 0o444, b"ca"),
        archive.FileEntry("app/bin", 0o555, b"\x7fELF"),
    ]
    tar = archive.layer_tar(entries, EPOCH)
    assert tar == archive.layer_tar(list(reversed(entries)), EPOCH)  # input order is irrelevant
    got = members(tar)
    assert [m.name for m in got] == [
        "app",
        "app/bin",
        "etc",
        "etc/ssl",
        "etc/ssl/certs",
        "etc/ssl/certs/ca.crt",
        "tmp",
    ]
    modes = {m.name: m.mode for m in got}
    assert modes["app/bin"] == 0o555 and modes["tmp"] == 0o1777 and modes["etc"] == 0o755
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in got} == {(0, 0, "", "", EPOCH)}
    assert all(not m.pax_headers for m in got)
    assert b"PaxHeader" not in tar and b"atime" not in tar


def test_layer_tar_bytes_are_pinned():
    """A known answer: a change to the tar format (PAX headers, owner names, padding) changes
    every image digest the kit has ever published for the same inputs."""
    tar = archive.layer_tar(oci.rootfs_entries(meta(ca_bundle=None), b"bin"), EPOCH)
    assert hashlib.sha256(tar).hexdigest() == (
        "a75e31ecbecf66e52770f0265569c1f4034300ce0e0c01224cf77144ba806738"
    )


def test_rootfs_has_binary_tmp_and_optional_ca_bundle():
    with_ca = {e.path for e in oci.rootfs_entries(meta(), b"bin")}
    assert with_ca == {"app/app", "tmp", oci.CA_PATH}
    assert {e.path for e in oci.rootfs_entries(meta(ca_bundle=None), b"bin")} == {"app/app", "tmp"}


# --- images -----------------------------------------------------------------------------------


def test_config_is_locked_down_and_points_at_its_layer():
    img = oci.platform_image(meta(), AMD64, X86_ELF, labels={"k": "v"})
    config = json.loads(img.config.data)
    c = config["config"]
    assert c["User"] == "65532:65532"
    assert c["Entrypoint"] == ["/app/app"]
    assert c["ExposedPorts"] == {"8080/tcp": {}}
    assert "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" in c["Env"]
    assert c["Labels"]["k"] == "v" and c["Labels"][oci.ANN_VERSION] == "1.2.3"
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    tar = gzip.decompress(img.layers[0].data)
    assert config["rootfs"]["diff_ids"] == [oci.sha256_digest(tar)] == list(img.diff_ids)
    manifest = json.loads(img.manifest.data)
    assert manifest["config"]["digest"] == img.config.digest
    assert manifest["layers"][0]["mediaType"] == oci.MEDIA_LAYER_GZIP


def test_arm64_config_carries_variant_v8():
    config = json.loads(oci.platform_image(meta(), ARM64, ARM_ELF).config.data)
    assert (config["architecture"], config["variant"]) == ("arm64", "v8")


def test_index_lists_platforms_in_fixed_order_with_annotations_and_tags():
    lay = make_layout()
    index = json.loads(lay.index.data)
    assert [m["platform"] for m in index["manifests"]] == [
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
    ]
    assert set(index["annotations"]) == {
        oci.ANN_CREATED,
        oci.ANN_SOURCE,
        oci.ANN_REVISION,
        oci.ANN_VERSION,
        oci.ANN_TITLE,
    }
    assert lay.tags == ("1.2.3", lay.digest[7:14])
    top = json.loads(lay.index_json)
    assert [e["annotations"][oci.ANN_REF_NAME] for e in top["manifests"]] == list(lay.tags)
    assert {e["digest"] for e in top["manifests"]} == {lay.digest}
    assert (
        top["manifests"][0]["annotations"][oci.ANN_CONTAINERD_NAME] == "docker.io/library/app:1.2.3"
    )


def test_the_index_digest_does_not_depend_on_the_order_images_come_in():
    forward = make_layout(images())
    backward = make_layout(list(reversed(images())))
    assert forward.digest == backward.digest and forward.index_json == backward.index_json


def test_a_platform_manifest_does_not_depend_on_the_other_platforms():
    alone = oci.platform_image(meta(), AMD64, X86_ELF)
    together = make_layout().image_for(AMD64)
    assert together is not None and together.manifest.data == alone.manifest.data


def test_two_images_for_one_platform_are_refused():
    m = meta()
    with pytest.raises(PackageError, match="same platform"):
        make_layout([oci.platform_image(m, AMD64, X86_ELF), oci.platform_image(m, AMD64, b"other")])


def test_inputs_change_the_digest():
    assert make_layout().digest != make_layout(m=meta(revision="fffffff")).digest


def test_containerd_names():
    assert oci.containerd_name("app") == "docker.io/library/app"
    assert oci.containerd_name("org/app") == "docker.io/org/app"
    assert oci.containerd_name("127.0.0.1:5000/app") == "127.0.0.1:5000/app"


# --- the docker-load tarball --------------------------------------------------------------


def test_tarball_has_the_layout_and_docker_manifest_for_the_chosen_image(tmp_path: Path):
    lay = make_layout()
    amd = lay.image_for(AMD64)
    assert amd is not None
    tar = layout.tarball(lay, amd, repo="app", mtime=EPOCH)
    names = [m.name for m in members(tar)]
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert {"oci-layout", "index.json", "manifest.json", "blobs", "blobs/sha256"} <= set(names)
    path = tmp_path / "app.tar"
    path.write_bytes(tar)
    read, docker = layout.read_tarball(path)
    assert read.digest == lay.digest
    assert [e.model_dump(by_alias=True) for e in docker] == [
        {
            "Config": f"blobs/sha256/{amd.config.digest[7:]}",
            "RepoTags": ["app:1.2.3", f"app:{lay.tags[1]}"],
            "Layers": [f"blobs/sha256/{amd.layers[0].digest[7:]}"],
        }
    ]


def test_a_tarball_without_docker_manifest_is_refused(tmp_path: Path):
    lay = make_layout()
    files = layout.layout_files(lay)
    tar = archive.layer_tar((archive.FileEntry(p, 0o644, d) for p, d in files.items()), EPOCH)
    (tmp_path / "x.tar").write_bytes(tar)
    with pytest.raises(PackageError, match=r"no Docker manifest\.json"):
        layout.read_tarball(tmp_path / "x.tar")


# --- reading and verifying -----------------------------------------------------------------


def test_read_layout_round_trips(tmp_path: Path):
    lay = make_layout()
    layout.write_layout(lay, tmp_path)
    back = layout.read_layout_dir(tmp_path)
    assert back.digest == lay.digest and back.tags == lay.tags
    assert [str(i.platform) for i in back.images] == ["linux/amd64", "linux/arm64/v8"]
    assert back.images[0].uncompressed_size == lay.images[0].uncompressed_size
    assert back.images[0].diff_ids == lay.images[0].diff_ids
    assert dict(back.annotations) == dict(lay.annotations)


def test_a_corrupted_blob_is_detected(tmp_path: Path):
    lay = make_layout()
    layout.write_layout(lay, tmp_path)
    blob = tmp_path / layout.blob_path(lay.images[1].layers[0].digest)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(PackageError, match="corrupted"):
        layout.read_layout_dir(tmp_path)


def test_a_missing_blob_is_detected(tmp_path: Path):
    lay = make_layout()
    layout.write_layout(lay, tmp_path)
    (tmp_path / layout.blob_path(lay.images[0].config.digest)).unlink()
    with pytest.raises(PackageError, match="missing"):
        layout.read_layout_dir(tmp_path)


class HandMade:
    """A layout written blob by blob from JSON documents, so any of them can lack a field."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_bytes(layout.OCI_LAYOUT)

    def blob(self, data: bytes | dict[str, Any], media_type: str) -> dict[str, Any]:
        raw = data if isinstance(data, bytes) else oci.canonical_json(data)
        (self.root / layout.blob_path(oci.sha256_digest(raw))).write_bytes(raw)
        return {"mediaType": media_type, "digest": oci.sha256_digest(raw), "size": len(raw)}

    def image(
        self, manifest: dict[str, Any] | None = None, config: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        tar = archive.layer_tar([archive.FileEntry("app/app", 0o555, b"bin")], EPOCH)
        layer = self.blob(archive.gzip_bytes(tar), oci.MEDIA_LAYER_GZIP)
        cfg = {"rootfs": {"type": "layers", "diff_ids": [oci.sha256_digest(tar)]}}
        cfg_desc = self.blob(cfg if config is None else config, oci.MEDIA_CONFIG)
        man = {"schemaVersion": 2, "config": cfg_desc, "layers": [layer]}
        desc = self.blob(man if manifest is None else manifest(man), oci.MEDIA_MANIFEST)
        return {**desc, "platform": {"os": "linux", "architecture": "amd64"}}

    def top(self, index: dict[str, Any], entry: Any = None) -> None:
        desc = self.blob(index, oci.MEDIA_INDEX)
        desc["annotations"] = {oci.ANN_REF_NAME: "1.2.3"}
        top = {"schemaVersion": 2, "manifests": [desc if entry is None else entry(desc)]}
        (self.root / "index.json").write_bytes(oci.canonical_json(top))


def _without(key: str):
    return lambda d: {k: v for k, v in d.items() if k != key}


def _manifest_layer_without(key: str):
    return lambda m: {**m, "layers": [_without(key)(m["layers"][0])]}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ({"manifest": _without("config")}, r"\(linux/amd64\) manifest .*config is missing"),
        ({"manifest": _without("layers")}, r"manifest .*layers is missing"),
        ({"manifest": lambda m: {**m, "layers": []}}, r"manifest lists no layer"),
        ({"manifest": _manifest_layer_without("digest")}, r"layers\.0\.digest is missing"),
        ({"manifest": _manifest_layer_without("mediaType")}, r"layers\.0\.mediaType is missing"),
        (
            {"manifest": lambda m: {**m, "config": _without("size")(m["config"])}},
            r"config\.size is missing",
        ),
        (
            {"config": {"created": "x"}},
            r"config is not a valid OCI image config: rootfs is missing",
        ),
        ({"config": {"rootfs": {}}}, r"rootfs\.diff_ids is missing"),
        ({"index": lambda i: {"schemaVersion": 2}}, r"image index .*manifests is missing"),
        ({"index": lambda i: {**i, "manifests": []}}, r"image index lists no platform image"),
        (
            {"index": lambda i: {**i, "manifests": [_without("platform")(i["manifests"][0])]}},
            r"names no platform",
        ),
        ({"entry": _without("digest")}, r"index.json is not a valid .*manifests\.0\.digest"),
        ({"entry": lambda d: {**d, "digest": "md5:00"}}, r"unsupported digest"),
        ({"entry": lambda d: {**d, "digest": "sha256:" + "../" * 21 + "x"}}, "unsupported digest"),
    ],
)
def test_a_damaged_layout_is_a_package_error_naming_what_is_missing(
    tmp_path: Path, damage: dict[str, Any], message: str
):
    made = HandMade(tmp_path)
    img = made.image(manifest=damage.get("manifest"), config=damage.get("config"))
    index = {"schemaVersion": 2, "mediaType": oci.MEDIA_INDEX, "manifests": [img]}
    made.top(damage.get("index", lambda i: i)(index), damage.get("entry"))
    with pytest.raises(PackageError, match=message) as e:
        layout.read_layout_dir(tmp_path)
    assert str(tmp_path) in e.value.message


def test_the_hand_made_layout_is_valid_when_undamaged(tmp_path: Path):
    """The damage above is what fails, not the way the layout is made."""
    made = HandMade(tmp_path)
    made.top({"schemaVersion": 2, "mediaType": oci.MEDIA_INDEX, "manifests": [made.image()]})
    assert layout.read_layout_dir(tmp_path).tags == ("1.2.3",)


def test_index_json_that_is_not_json_is_a_package_error(tmp_path: Path):
    layout.write_layout(make_layout(), tmp_path)
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(PackageError, match=r"index\.json is not a valid OCI image index"):
        layout.read_layout_dir(tmp_path)


# --- merging ----------------------------------------------------------------------------------


def test_merging_different_releases_is_refused():
    a = make_layout([oci.platform_image(meta(), AMD64, X86_ELF)])
    other = meta(version="9.9.9")
    b = make_layout([oci.platform_image(other, ARM64, ARM_ELF)], m=other)
    with pytest.raises(PackageError, match="different releases"):
        oci.merge([a, b], repo="app")


def test_merging_the_same_platform_twice_is_refused():
    a = make_layout([oci.platform_image(meta(), AMD64, X86_ELF)])
    with pytest.raises(PackageError, match="linux/amd64"):
        oci.merge([a, a], repo="app")


def test_merging_layouts_without_a_version_is_refused():
    m = meta(version="")
    a = oci.assemble(
        [oci.platform_image(m, AMD64, X86_ELF)], m.annotations(), version="x", repo="a"
    )
    with pytest.raises(PackageError, match="no version tag"):
        oci.merge([a], repo="app")
