"""`invoke package` and `invoke smoke` for real: kit-built binaries, skopeo, umoci, Docker.

One session-scoped build (both arches, mimalloc) in a temp dist/ that shares the repo's cargo
target dir, so after the first build every test here is quick.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from kit.build.run import build_matrix, record_path
from kit.core import engine
from kit.core.allocators import MIMALLOC
from kit.core.errors import ConfigError, GateError, PackageError
from kit.core.options import Options, resolve_options
from kit.core.targets import SHIPPING_TARGETS
from kit.image import oci
from kit.image.container import smoke
from kit.image.package import merge, outputs, package

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _opts(base: Path, **flags) -> Options:
    return resolve_options(
        ROOT,
        flags={
            "dist_dir": str(base / "dist"),
            "reports_dir": str(base / "reports"),
            "target_dir": str(ROOT / "target"),
            **flags,
        },
    )


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Options:
    opts = _opts(tmp_path_factory.mktemp("pkg"))
    build_matrix(opts, SHIPPING_TARGETS, (MIMALLOC,))
    return opts


@pytest.fixture(scope="session")
def packaged(built: Options) -> dict:
    return package(built, targets="all", allocator="mimalloc")


def skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True).stdout


def _with(opts: Options, **changes) -> Options:
    return dataclasses.replace(opts, **changes)


def _snapshot(path: Path) -> dict[str, bytes]:
    if not path.exists():
        return {}
    return {str(p): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_skopeo_inspects_each_arch(built: Options, packaged: dict):
    layout = outputs(built).layout_dir
    version = packaged["tags"]["version"]
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        extra = ["--override-arch", arch] + (["--override-variant", variant] if variant else [])
        for tag in packaged["tags"]["tags"]:
            info = json.loads(skopeo("inspect", *extra, f"oci:{layout}:{tag}"))
            assert info["Architecture"] == arch and info["Os"] == "linux"
            assert info["Digest"] == packaged["index_digest"]
            assert info["Labels"][oci.ANN_VERSION] == version
        config = json.loads(skopeo("inspect", "--config", *extra, f"oci:{layout}:{version}"))
        assert config["config"]["User"] == "65532:65532"
        assert config["config"]["Entrypoint"] == ["/app/rust_sample"]
        assert config.get("variant") == variant


def test_skopeo_copy_all_keeps_the_index(built: Options, packaged: dict, tmp_path: Path):
    layout = outputs(built).layout_dir
    tag = packaged["tags"]["version"]
    skopeo("copy", "--all", f"oci:{layout}:{tag}", f"oci:{tmp_path / 'copy'}:{tag}")
    raw = skopeo("inspect", "--raw", f"oci:{tmp_path / 'copy'}:{tag}").encode()
    assert oci.sha256_digest(raw) == packaged["index_digest"]


def test_umoci_unpacks_a_single_arch_layout(built: Options, tmp_path: Path):
    single = _with(built, image_name="rust-sample-amd64")
    report = package(single, targets="x86_64", allocator="mimalloc")
    layout = outputs(single).layout_dir
    bundle = tmp_path / "bundle"
    subprocess.run(
        [
            "umoci",
            "unpack",
            "--rootless",
            "--image",
            f"{layout}:{report['tags']['version']}",
            str(bundle),
        ],
        check=True,
        capture_output=True,
    )
    binary = bundle / "rootfs" / "app" / "rust_sample"
    assert stat.S_IMODE(binary.stat().st_mode) == 0o555
    assert stat.S_IMODE((bundle / "rootfs" / "tmp").stat().st_mode) == 0o1777
    assert (bundle / "rootfs" / "etc/ssl/certs/ca-certificates.crt").stat().st_size > 100_000
    runtime = json.loads((bundle / "config.json").read_text())
    assert runtime["process"]["args"] == ["/app/rust_sample"]
    assert "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" in runtime["process"]["env"]


def test_two_clean_packagings_give_identical_digests(built: Options, packaged: dict):
    again = _with(built, image_name="rust-sample-again")
    second = package(again, targets="all", allocator="mimalloc", reproducible=True)
    assert second["reproducible"]["checked"] is True
    assert second["index_digest"] == packaged["index_digest"]
    assert [p["manifest_digest"] for p in second["platforms"]] == [
        p["manifest_digest"] for p in packaged["platforms"]
    ]


def test_merging_per_target_layouts_gives_the_same_digest(
    built: Options, packaged: dict, tmp_path: Path
):
    parts = []
    for t in ("aarch64", "x86_64"):
        one = _with(built, image_name=f"rust-sample-{t}")
        package(one, targets=t, allocator="mimalloc")
        parts.append(outputs(one).layout_dir)
    # same image name, another dist/: then even the docker-load tarball is byte-identical
    merged_opts = _with(built, dist_dir=tmp_path / "merged")
    merged = merge(merged_opts, parts)
    assert merged["index_digest"] == packaged["index_digest"]
    assert merged["tarball"]["sha256"] == packaged["tarball"]["sha256"]


def test_docker_load_and_smoke(built: Options, packaged: dict):
    if engine.ping() is None:
        pytest.skip("no Docker engine reachable")
    report = smoke(built)
    assert report["exit_code"] == 0
    assert report["stop_s"] < 5
    assert report["hello"] == {"message": "Hello, Ferris! You are a crab."}
    assert report["image_id"] == packaged["docker"]["image_id"]


# --- bad input: a clear error and nothing half-written ---------------------------------------


def _planted_dist(built: Options, tmp_path: Path, triple: str, binary: Path) -> Options:
    """A copy of the built dist/ with `binary` standing in for triple's rust_sample."""
    opts = _with(built, dist_dir=tmp_path / "dist")
    shutil.copytree(
        built.path(built.dist_dir), opts.path(opts.dist_dir), ignore=shutil.ignore_patterns("oci")
    )
    dest = opts.path(opts.dist_dir) / triple / "mimalloc" / "rust_sample"
    shutil.copyfile(binary, dest)
    record = json.loads(record_path(dest).read_text())
    record["sha256"] = oci.sha256_digest(dest.read_bytes()).split(":")[1]
    record_path(dest).write_text(json.dumps(record))
    return opts


def test_a_dynamic_binary_is_refused(built: Options, tmp_path: Path):
    opts = _planted_dist(
        built, tmp_path, "x86_64-unknown-linux-musl", Path(sys.executable).resolve()
    )
    with pytest.raises(GateError, match=r"no-interpreter|no-needed"):
        package(opts, targets="x86_64", allocator="mimalloc")
    assert not (opts.path(opts.dist_dir) / "oci").exists()


def test_a_wrong_arch_binary_is_refused(built: Options, tmp_path: Path):
    x86 = built.path(built.dist_dir) / "x86_64-unknown-linux-musl" / "mimalloc" / "rust_sample"
    opts = _planted_dist(built, tmp_path, "aarch64-unknown-linux-musl", x86)
    with pytest.raises(GateError, match="architecture"):
        package(opts, targets="all", allocator="mimalloc")
    assert not (opts.path(opts.dist_dir) / "oci").exists()


def test_a_corrupted_blob_is_refused_and_outputs_are_kept(
    built: Options, packaged: dict, tmp_path: Path
):
    src = tmp_path / "input"
    shutil.copytree(outputs(built).layout_dir, src)
    layer = src / oci.blob_path(packaged["platforms"][1]["layer_digest"])
    data = bytearray(layer.read_bytes())
    data[1000] ^= 0x01
    layer.write_bytes(bytes(data))
    before = _snapshot(outputs(built).layout_dir.parent)
    with pytest.raises(PackageError, match="corrupted"):
        merge(built, [src])
    assert _snapshot(outputs(built).layout_dir.parent) == before

    # The same corruption inside the docker-load tarball is caught before anything is loaded.
    good = outputs(built).tarball
    with tarfile.open(good) as t:
        member = t.getmember(oci.blob_path(packaged["platforms"][0]["layer_digest"]))
    broken = bytearray(good.read_bytes())
    broken[member.offset_data + 1000] ^= 0x01
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(broken))
    with pytest.raises(PackageError, match="corrupted"):
        oci.read_tarball(bad)


def test_no_winner_and_no_allocator_is_a_config_error(built: Options, tmp_path: Path):
    opts = _with(built, reports_dir=tmp_path / "reports", dist_dir=tmp_path / "dist")
    with pytest.raises(ConfigError, match="No allocator chosen"):
        package(opts, targets="all")
    assert not (tmp_path / "dist").exists()


def test_size_budget_exceeded_writes_nothing(built: Options, tmp_path: Path):
    opts = _with(built, image_name="rust-sample-tiny", size_budget_mb=0.001)
    with pytest.raises(PackageError, match="size budget"):
        package(opts, targets="all", allocator="mimalloc")
    assert not outputs(opts).layout_dir.exists() and not outputs(opts).tarball.exists()


def test_unreachable_engine_exits_7(built: Options, packaged: dict):
    env = {
        **os.environ,
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        "KIT_DIST_DIR": str(built.path(built.dist_dir)),
        "KIT_REPORTS_DIR": str(built.path(built.reports_dir)),
    }
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 7, done.stderr
    assert "No Docker engine is reachable" in done.stderr
