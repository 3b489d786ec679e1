"""kit.image.oci and the pure parts of kit.image.package: bytes in, bytes out, no processes."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import tarfile
from pathlib import Path

import pytest

from kit.core.errors import ConfigError, GateError, PackageError
from kit.core.options import resolve_options
from kit.core.targets import AARCH64_MUSL, X86_64_MUSL
from kit.image import oci, package

AMD64 = oci.Platform.parse("linux/amd64")
ARM64 = oci.Platform.parse("linux/arm64/v8")
EPOCH = 1_700_000_000


def fake_elf(machine: int, *, interp: bytes | None = None) -> bytes:
    """A minimal ELF64 file: a header and, optionally, a PT_INTERP program header."""
    phnum = 1 if interp else 0
    header = b"\x7fELF\x02\x01\x01" + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0, 64, 0, 0, 64, 56, phnum, 64, 0, 0)
    if not interp:
        return header + b"\0" * 64
    offset = 64 + 56
    phdr = struct.pack("<IIQQQQQQ", 3, 4, offset, 0, 0, len(interp) + 1, len(interp) + 1, 1)
    return header + phdr + interp + b"\0"


X86_ELF = fake_elf(62)
ARM_ELF = fake_elf(183)


def meta(**kw) -> oci.ImageMeta:
    base = dict(
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


def layout(imgs=None, m=None) -> oci.Layout:
    m = m or meta()
    return oci.assemble(imgs or images(m), m.annotations(), version=m.version, repo="app")


def members(tar_bytes: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as t:
        return t.getmembers()


# --- bytes ------------------------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8():
    assert (
        oci.canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}})
        == '{"a":{"c":"é","d":[1,2]},"b":1}'.encode()
    )


def test_gzip_header_is_fixed():
    gz = oci.gzip_bytes(b"x" * 1000)
    # magic, deflate, no flags (no file name), mtime 0, XFL 2 (level 9), OS 255 (unknown)
    assert gz[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    assert gzip.decompress(gz) == b"x" * 1000
    assert oci.gzip_bytes(b"x" * 1000) == gz


def test_layer_tar_is_sorted_with_parents_fixed_owner_modes_and_mtime():
    entries = [
        oci.FileEntry("tmp", 0o1777),
        oci.FileEntry("etc/ssl/certs/ca.crt", 0o444, b"ca"),
        oci.FileEntry("app/bin", 0o555, b"\x7fELF"),
    ]
    tar = oci.layer_tar(entries, EPOCH)
    assert tar == oci.layer_tar(list(reversed(entries)), EPOCH)
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
    assert config["rootfs"]["diff_ids"] == [oci.sha256_digest(tar)]
    manifest = json.loads(img.manifest.data)
    assert manifest["config"]["digest"] == img.config.digest
    assert manifest["layers"][0]["mediaType"] == oci.MEDIA_LAYER_GZIP
    assert img.config.data == oci.canonical_json(config)


def test_arm64_config_carries_variant_v8():
    config = json.loads(oci.platform_image(meta(), ARM64, ARM_ELF).config.data)
    assert (config["architecture"], config["variant"]) == ("arm64", "v8")


def test_index_lists_platforms_in_fixed_order_with_annotations_and_tags():
    lay = layout()
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


def test_a_platform_manifest_does_not_depend_on_the_other_platforms():
    alone = oci.platform_image(meta(), AMD64, X86_ELF)
    together = layout().image_for(AMD64)
    assert together is not None and together.manifest.data == alone.manifest.data


def test_two_images_for_one_platform_are_refused():
    m = meta()
    with pytest.raises(PackageError, match="same platform"):
        layout([oci.platform_image(m, AMD64, X86_ELF), oci.platform_image(m, AMD64, b"other")])


def test_digests_are_stable_across_two_writes(tmp_path: Path):
    def write(dest: Path) -> dict[str, str]:
        oci.write_layout(layout(), dest)
        return {
            str(p.relative_to(dest)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in dest.rglob("*")
            if p.is_file()
        }

    first, second = write(tmp_path / "a"), write(tmp_path / "b")
    assert first == second
    assert set(first) >= {"oci-layout", "index.json"}
    assert len([k for k in first if k.startswith("blobs/sha256/")]) == 1 + 2 * 3


def test_inputs_change_the_digest():
    assert layout().digest != layout(m=meta(revision="fffffff")).digest


# --- the docker-load tarball --------------------------------------------------------------


def test_tarball_has_the_layout_and_docker_manifest_for_the_chosen_image(tmp_path: Path):
    lay = layout()
    amd = lay.image_for(AMD64)
    tar = oci.tarball(lay, amd, repo="app", mtime=EPOCH)
    assert tar == oci.tarball(layout(), amd, repo="app", mtime=EPOCH)
    names = [m.name for m in members(tar)]
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert {"oci-layout", "index.json", "manifest.json", "blobs", "blobs/sha256"} <= set(names)
    path = tmp_path / "app.tar"
    path.write_bytes(tar)
    read, docker = oci.read_tarball(path)
    assert read.digest == lay.digest
    assert docker == [
        {
            "Config": f"blobs/sha256/{amd.config.digest[7:]}",
            "RepoTags": ["app:1.2.3", f"app:{lay.tags[1]}"],
            "Layers": [f"blobs/sha256/{amd.layers[0].digest[7:]}"],
        }
    ]


# --- reading, verifying, merging -----------------------------------------------------------


def test_read_layout_round_trips(tmp_path: Path):
    lay = layout()
    oci.write_layout(lay, tmp_path)
    back = oci.read_layout_dir(tmp_path)
    assert back.digest == lay.digest and back.tags == lay.tags
    assert [str(i.platform) for i in back.images] == ["linux/amd64", "linux/arm64/v8"]
    assert back.images[0].uncompressed_size == lay.images[0].uncompressed_size


def test_a_corrupted_blob_is_detected(tmp_path: Path):
    lay = layout()
    oci.write_layout(lay, tmp_path)
    blob = tmp_path / oci.blob_path(lay.images[1].layers[0].digest)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(PackageError, match="corrupted"):
        oci.read_layout_dir(tmp_path)


def test_a_missing_blob_is_detected(tmp_path: Path):
    lay = layout()
    oci.write_layout(lay, tmp_path)
    (tmp_path / oci.blob_path(lay.images[0].config.digest)).unlink()
    with pytest.raises(PackageError, match="missing"):
        oci.read_layout_dir(tmp_path)


def test_merging_per_platform_layouts_gives_the_one_machine_digest():
    m = meta()
    amd, arm = oci.platform_image(m, AMD64, X86_ELF), oci.platform_image(m, ARM64, ARM_ELF)
    both = oci.assemble([amd, arm], m.annotations(), version=m.version, repo="app")
    parts = [oci.assemble([p], m.annotations(), version=m.version, repo="app") for p in (arm, amd)]
    merged = oci.merge(parts, repo="app")
    assert merged.digest == both.digest
    assert merged.index_json == both.index_json
    assert merged.blobs == both.blobs


def test_merging_different_releases_is_refused():
    a = layout([oci.platform_image(meta(), AMD64, X86_ELF)])
    b = layout([oci.platform_image(meta(version="9.9.9"), ARM64, ARM_ELF)], m=meta(version="9.9.9"))
    with pytest.raises(PackageError, match="different releases"):
        oci.merge([a, b], repo="app")


def test_merging_the_same_platform_twice_is_refused():
    a = layout([oci.platform_image(meta(), AMD64, X86_ELF)])
    with pytest.raises(PackageError, match="linux/amd64"):
        oci.merge([a, a], repo="app")


# --- package: inputs and gates ---------------------------------------------------------------


def opts_in(tmp_path: Path, **flags):
    return resolve_options(tmp_path, flags=flags, environ={})


def test_allocator_flag_wins_then_winner_json(tmp_path: Path):
    opts = opts_in(tmp_path)
    assert package.resolve_allocator(opts, "jemalloc").name == "jemalloc"
    winner = tmp_path / "reports" / "bench" / "winner.json"
    winner.parent.mkdir(parents=True)
    winner.write_text('{"allocator": "mimalloc"}')
    assert package.resolve_allocator(opts, None).name == "mimalloc"


def test_no_winner_and_no_flag_says_what_to_do(tmp_path: Path):
    with pytest.raises(ConfigError) as e:
        package.resolve_allocator(opts_in(tmp_path), None)
    assert "nox -s bench" in (e.value.hint or "") and "--allocator" in (e.value.hint or "")


def test_malformed_winner_is_a_config_error(tmp_path: Path):
    winner = tmp_path / "reports" / "bench" / "winner.json"
    winner.parent.mkdir(parents=True)
    winner.write_text("{not json")
    with pytest.raises(ConfigError, match="does not name an allocator"):
        package.resolve_allocator(opts_in(tmp_path), None)


def test_source_date_epoch_from_the_environment(tmp_path: Path):
    assert package.source_date_epoch(tmp_path, {"SOURCE_DATE_EPOCH": "42"}) == (
        42,
        "env SOURCE_DATE_EPOCH",
    )
    with pytest.raises(ConfigError):
        package.source_date_epoch(tmp_path, {"SOURCE_DATE_EPOCH": "yesterday"})


def test_credentials_are_stripped_from_the_source_url():
    assert (
        package._without_credentials("https://u:tok@git.example/x.git")
        == "https://git.example/x.git"
    )


def test_binary_gate_refuses_dynamic_and_wrong_arch(tmp_path: Path):
    from kit.core.allocators import SYSTEM

    good, dynamic, wrong = tmp_path / "good", tmp_path / "dynamic", tmp_path / "wrong"
    good.write_bytes(X86_ELF)
    dynamic.write_bytes(fake_elf(62, interp=b"/lib64/ld-linux-x86-64.so.2"))
    wrong.write_bytes(X86_ELF)
    package.check_binary(good, X86_64_MUSL, SYSTEM)
    with pytest.raises(GateError, match="no-interpreter"):
        package.check_binary(dynamic, X86_64_MUSL, SYSTEM)
    with pytest.raises(GateError, match="architecture"):
        package.check_binary(wrong, AARCH64_MUSL, SYSTEM)


def test_size_budget(tmp_path: Path):
    lay = layout()
    package.check_budget(lay, 1.0)
    with pytest.raises(PackageError, match="size budget"):
        package.check_budget(lay, 0.000_001)
