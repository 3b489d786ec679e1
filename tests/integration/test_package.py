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

from kit.build.project import Project
from kit.build.record import read_build_record, write_build_record
from kit.core import engine
from kit.core.errors import GateError, PackageError, SmokeError
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.probes import CliProbe, Request, Smoke
from kit.image import layout, oci
from kit.image.container import smoke
from kit.image.package import merge, package
from kit.image.report import PackageReport, read_smoke_report
from tests.integration.conftest import ROOT
from tests.unit.test_oci import HandMade

pytestmark = pytest.mark.integration

SMOKE_LABEL = "dev.static-rust-kit.smoke=1"


def _package(opts: Options, project: Project, **kw) -> PackageReport:
    report = package(opts, project, **kw)
    assert report is not None  # None only in a dry run
    return report


def skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True).stdout


def _with(opts: Options, **changes) -> Options:
    return dataclasses.replace(opts, **changes)


def _layout_dir(opts: Options) -> Path:
    return Paths.of(opts).layout(opts.image_name)


def _snapshot(path: Path) -> dict[str, bytes]:
    if not path.exists():
        return {}
    return {str(p): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_the_report_stores_project_relative_paths(built: Options, packaged: PackageReport):
    paths = Paths.of(built)
    assert paths.resolve(packaged.layout) == _layout_dir(built)
    assert paths.resolve(packaged.tarball.path) == paths.tarball(built.image_name)
    assert packaged.allocator == "mimalloc" and packaged.allocator_source == "flag"
    for p in packaged.platforms:
        assert p.binary is not None and paths.resolve(p.binary.path).is_file()


def test_skopeo_inspects_each_arch(built: Options, packaged: PackageReport):
    layout_dir = _layout_dir(built)
    version = packaged.tags.version
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        extra = ["--override-arch", arch] + (["--override-variant", variant] if variant else [])
        for tag in packaged.tags.tags:
            info = json.loads(skopeo("inspect", *extra, f"oci:{layout_dir}:{tag}"))
            assert info["Architecture"] == arch and info["Os"] == "linux"
            assert info["Digest"] == packaged.index_digest
            assert info["Labels"][oci.ANN_VERSION] == version
        config = json.loads(skopeo("inspect", "--config", *extra, f"oci:{layout_dir}:{version}"))
        assert config["config"]["User"] == "65532:65532"
        assert config["config"]["Entrypoint"] == ["/app/rust_sample"]
        assert config.get("variant") == variant


def test_skopeo_copy_all_keeps_the_index(built: Options, packaged: PackageReport, tmp_path: Path):
    layout_dir = _layout_dir(built)
    tag = packaged.tags.version
    skopeo("copy", "--all", f"oci:{layout_dir}:{tag}", f"oci:{tmp_path / 'copy'}:{tag}")
    raw = skopeo("inspect", "--raw", f"oci:{tmp_path / 'copy'}:{tag}").encode()
    assert oci.sha256_digest(raw) == packaged.index_digest


def test_umoci_unpacks_a_single_arch_layout(built: Options, project: Project, tmp_path: Path):
    single = _with(built, image_name="rust-sample-amd64")
    report = _package(single, project, targets="x86_64", allocator="mimalloc")
    bundle = tmp_path / "bundle"
    subprocess.run(
        [
            "umoci",
            "unpack",
            "--rootless",
            "--image",
            f"{_layout_dir(single)}:{report.tags.version}",
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


def test_a_second_packaging_in_a_fresh_process_is_byte_identical(
    built: Options, project: Project, packaged: PackageReport
):
    again = _with(built, image_name="rust-sample-again")
    second = _package(again, project, targets="all", allocator="mimalloc", reproducible=True)
    assert second.reproducible.checked is True
    # every layout file (oci-layout, index.json, 7 blobs) and the tarball
    assert second.reproducible.files == 2 + 7 + 1
    assert second.index_digest == packaged.index_digest
    assert [p.manifest_digest for p in second.platforms] == [
        p.manifest_digest for p in packaged.platforms
    ]


def test_the_reproducibility_check_never_builds(
    built: Options, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The child re-reads dist/: a binary gone by then fails the check, it is not rebuilt."""
    from kit.image import repro

    opts = _with(built, dist_dir=tmp_path / "dist", image_name="rust-sample-gone")
    shutil.copytree(built.path(built.dist_dir), opts.path(opts.dist_dir))
    real = repro.check_reproducible

    def remove_then_check(*args, **kw):
        for binary in opts.path(opts.dist_dir).glob("*/mimalloc/rust_sample"):
            binary.unlink()
        return real(*args, **kw)

    monkeypatch.setattr("kit.image.package.check_reproducible", remove_then_check)
    with pytest.raises(PackageError, match=r"second packaging .* failed"):
        package(opts, project, targets="x86_64", allocator="mimalloc", reproducible=True)


def test_merging_per_target_layouts_gives_the_same_digest(
    built: Options, project: Project, packaged: PackageReport, tmp_path: Path
):
    parts = []
    for t in ("aarch64", "x86_64"):
        one = _with(built, image_name=f"rust-sample-{t}")
        _package(one, project, targets=t, allocator="mimalloc")
        parts.append(_layout_dir(one))
    # same image name, another dist/: then even the docker-load tarball is byte-identical
    merged = merge(_with(built, dist_dir=tmp_path / "merged"), parts)
    assert merged is not None
    assert merged.index_digest == packaged.index_digest
    assert merged.tarball.sha256 == packaged.tarball.sha256


def test_docker_load_and_smoke(built: Options, packaged: PackageReport):
    if engine.ping() is None:
        pytest.skip("no Docker engine reachable")
    report = smoke(built)  # rust_sample's own server probe (rust_sample/Cargo.toml)
    server = built.smoke.server
    assert server is not None
    assert report.probe == "server" and report.exit_code == 0
    assert report.command == server.argv_for(built.port)
    assert report.stop_s is not None and report.stop_s < server.grace_period_s
    assert [(a.path, a.status) for a in report.answers] == [
        (r.path, r.status) for r in server.requests
    ]
    assert report.image_id in {packaged.docker.image_id, packaged.index_digest}
    assert read_smoke_report(built) == report


def _smoke_containers() -> list[str]:
    client = engine.client()
    return [c.name for c in client.containers.list(all=True, filters={"label": SMOKE_LABEL})]


def test_without_a_server_probe_the_image_runs_the_cli_probe(
    built: Options, packaged: PackageReport
):
    if engine.ping() is None:
        pytest.skip("no Docker engine reachable")
    cli = CliProbe(stdout_regex=r"allocator=mimalloc target=x86_64-unknown-linux-musl")
    report = smoke(_with(built, smoke=Smoke(cli=cli)))
    assert (report.probe, report.command, report.exit_code) == ("cli", ("--version",), 0)
    assert report.output is not None and report.output.startswith("rust_sample 0.1.0 ")
    with pytest.raises(SmokeError, match=r"does not match /allocator=jemalloc/"):
        smoke(_with(built, smoke=Smoke(cli=CliProbe(stdout_regex="allocator=jemalloc"))))
    assert not _smoke_containers()


def test_a_wrong_answer_from_the_image_is_a_smoke_error_and_no_container_is_left(
    built: Options, packaged: PackageReport
):
    if engine.ping() is None:
        pytest.skip("no Docker engine reachable")
    server = built.smoke.server
    assert server is not None
    wrong = server.model_copy(update={"requests": (Request(path="/healthz", status=204),)})
    with pytest.raises(SmokeError, match=r"GET http://127\.0\.0\.1:\d+/healthz answered 200, "):
        smoke(_with(built, smoke=Smoke(server=wrong)))
    assert not _smoke_containers()


# --- bad input: a clear error and nothing half-written ---------------------------------------


def _planted_dist(built: Options, tmp_path: Path, triple: str, binary: Path) -> Options:
    """A copy of the built dist/ with `binary` standing in for triple's rust_sample."""
    opts = _with(built, dist_dir=tmp_path / "dist")
    shutil.copytree(
        built.path(built.dist_dir), opts.path(opts.dist_dir), ignore=shutil.ignore_patterns("oci")
    )
    dest = Paths.of(opts).binary(triple, "mimalloc", "rust_sample")
    shutil.copyfile(binary, dest)
    record = read_build_record(dest)
    sha256 = oci.sha256_digest(dest.read_bytes()).split(":")[1]
    write_build_record(dest, record.model_copy(update={"sha256": sha256}))
    return opts


def test_a_dynamic_binary_is_refused(built: Options, project: Project, tmp_path: Path):
    opts = _planted_dist(
        built, tmp_path, "x86_64-unknown-linux-musl", Path(sys.executable).resolve()
    )
    with pytest.raises(GateError, match=r"no-interpreter|no-needed"):
        package(opts, project, targets="x86_64", allocator="mimalloc")
    assert not Paths.of(opts).oci.exists()


def test_a_wrong_arch_binary_is_refused(built: Options, project: Project, tmp_path: Path):
    x86 = Paths.of(built).binary("x86_64-unknown-linux-musl", "mimalloc", "rust_sample")
    opts = _planted_dist(built, tmp_path, "aarch64-unknown-linux-musl", x86)
    with pytest.raises(GateError, match="architecture"):
        package(opts, project, targets="all", allocator="mimalloc")
    assert not Paths.of(opts).oci.exists()


def test_a_corrupted_blob_is_refused_and_outputs_are_kept(
    built: Options, packaged: PackageReport, tmp_path: Path
):
    src = tmp_path / "input"
    shutil.copytree(_layout_dir(built), src)
    blob = src / layout.blob_path(packaged.platforms[1].layer_digest)
    data = bytearray(blob.read_bytes())
    data[1000] ^= 0x01
    blob.write_bytes(bytes(data))
    before = _snapshot(Paths.of(built).oci)
    with pytest.raises(PackageError, match="corrupted"):
        merge(built, [src])
    assert _snapshot(Paths.of(built).oci) == before

    # The same corruption inside the docker-load tarball is caught before anything is loaded.
    good = Paths.of(built).tarball(built.image_name)
    with tarfile.open(good) as t:
        member = t.getmember(layout.blob_path(packaged.platforms[0].layer_digest))
    broken = bytearray(good.read_bytes())
    broken[member.offset_data + 1000] ^= 0x01
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(broken))
    with pytest.raises(PackageError, match="corrupted"):
        layout.read_tarball(bad)


def test_no_winner_ships_the_first_configured_allocator(
    built: Options, project: Project, tmp_path: Path
):
    """kit.bench.winner's policy: without a bench winner, the first configured allocator,
    and the report says where the choice came from."""
    opts = _with(
        built, reports_dir=tmp_path / "reports", allocators=("mimalloc",), image_name="rs-fb"
    )
    report = _package(opts, project, targets="x86_64")
    assert report.allocator == "mimalloc"
    assert report.allocator_source is not None and report.allocator_source.startswith("fallback")


def test_size_budget_exceeded_writes_nothing(built: Options, project: Project):
    opts = _with(built, image_name="rust-sample-tiny", size_budget_mb=0.001)
    with pytest.raises(PackageError, match="size budget"):
        package(opts, project, targets="all", allocator="mimalloc")
    paths = Paths.of(opts)
    assert not paths.layout(opts.image_name).exists()
    assert not paths.tarball(opts.image_name).exists()


# --- the command line: exit codes, no tracebacks ---------------------------------------------


def _invoke(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_unreachable_engine_exits_7(built: Options, packaged: PackageReport):
    done = _invoke(
        "smoke",
        env={
            "DOCKER_HOST": "unix:///nonexistent/docker.sock",
            "KIT_DIST_DIR": str(built.path(built.dist_dir)),
            "KIT_REPORTS_DIR": str(built.path(built.reports_dir)),
        },
    )
    assert done.returncode == 7, done.stderr
    assert "No Docker engine is reachable" in done.stderr


def test_merging_a_layout_without_config_exits_9_without_a_traceback(tmp_path: Path):
    bad = tmp_path / "bad"
    made = HandMade(bad)
    image = made.image(manifest=lambda m: {k: v for k, v in m.items() if k != "config"})
    made.top({"schemaVersion": 2, "mediaType": oci.MEDIA_INDEX, "manifests": [image]})
    done = _invoke("package", "--merge", str(bad), env={"KIT_DIST_DIR": str(tmp_path / "d")})
    assert done.returncode == 9, done.stderr
    assert "config is missing" in done.stderr and "Traceback" not in done.stderr


def test_smoke_on_an_old_package_report_exits_2_without_a_traceback(tmp_path: Path):
    oci_dir = tmp_path / "dist" / "oci"
    oci_dir.mkdir(parents=True)
    (oci_dir / "rust-sample.tar").write_bytes(b"")
    (oci_dir / "rust-sample.package.json").write_text(json.dumps({"schema": 1, "image": "x"}))
    done = _invoke(
        "smoke", env={"KIT_DIST_DIR": str(tmp_path / "dist"), "KIT_IMAGE_NAME": "rust-sample"}
    )
    assert done.returncode == 2, done.stderr
    assert "older kit (schema 1)" in done.stderr and "Traceback" not in done.stderr
