"""kit.image's task side without processes: inputs, SOURCE_DATE_EPOCH, the package and merge
tasks end to end on fake binaries (git answered by a stand-in), the records, and the pieces of
the reproducibility check that run in the parent."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from kit.build.project import Package, Project
from kit.build.record import BuildRecord, write_build_record
from kit.core import runner
from kit.core.allocators import SYSTEM
from kit.core.epoch import FROM_COMMIT, FROM_DEFAULT, FROM_ENV, build_epoch, source_date_epoch
from kit.core.errors import (
    CommandFailedError,
    ConfigError,
    GateError,
    PackageError,
    ToolMissingError,
)
from kit.core.options import Options, resolve_options
from kit.core.paths import Paths
from kit.core.records import RecordError
from kit.core.targets import AARCH64_MUSL, X86_64_MUSL
from kit.image import container, inputs, layout, oci, package, repro
from kit.image.report import EpochFacts, read_image_tags, read_package_report

from .test_oci import HandMade

EPOCH = 1_700_000_000
ORIGIN = "https://git.example/app.git"


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


@pytest.fixture
def git(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """git answered without a process: a commit time, a revision, an origin with a token."""
    calls: list[tuple[str, ...]] = []
    answers = {
        "log": str(EPOCH),
        "rev-parse": "0123abc",
        "remote": "https://u:tok@git.example/app.git",
    }

    def capture(argv: Sequence[str | Path], **_: Any) -> str:
        args = tuple(str(a) for a in argv)
        calls.append(args)
        return answers[args[3]]

    monkeypatch.setattr(runner, "capture", capture)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    return calls


def opts_in(root: Path, **flags: Any) -> Options:
    return resolve_options(
        root,
        flags={
            "manifest_path": "Cargo.toml",
            "ca_bundle": False,
            "image_name": "rust-sample",
            **flags,
        },
        environ={},
    )


def project_in(root: Path) -> Project:
    manifest = root / "Cargo.toml"
    return Project(manifest, root, (Package("app", "1.2.3", manifest, ("app",), frozenset()),))


def plant_binary(opts: Options, data: bytes = X86_ELF, *, target=X86_64_MUSL) -> Path:
    """A gated binary in dist/ with its build record, as `invoke build` leaves it."""
    paths = Paths.of(opts)
    binary = paths.binary(target.triple, "system", "app")
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_bytes(data)
    record = BuildRecord(
        name="app",
        path=binary.relative_to(paths.dist).as_posix(),
        triple=target.triple,
        arch=target.arch,
        oci_platform=target.oci_platform,
        allocator="system",
        allocator_linked="system",
        allocator_route="libc",
        backend="zigbuild",
        toolchain={"name": "", "rustc": "rustc 1.96.0", "cargo": "cargo 1.96.0"},
        zig=None,
        cargo_zigbuild=None,
        libc={"name": "musl", "version": None, "origin": "zig"},
        std="prebuilt",
        profile="release",
        command="cargo zigbuild",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        unstripped_size=len(data),
        debug=None,
        duration_s=1.0,
        built_at="2026-01-01T00:00:00+00:00",
        gates=(),
        elf="statically linked",
        machine="EM_X86_64",
        smoke={"argv": ["app"], "emulator": None, "output": "", "report": {}},
    )
    write_build_record(binary, record)
    return binary


# --- SOURCE_DATE_EPOCH ----------------------------------------------------------------------


def test_source_date_epoch_from_the_environment_wins(git):
    assert source_date_epoch(Path("."), {"SOURCE_DATE_EPOCH": "42"}) == (42, FROM_ENV)
    assert git == []  # git is not asked when the environment says it


def test_source_date_epoch_from_the_last_commit(git):
    assert source_date_epoch(Path("/repo"), {}) == (EPOCH, FROM_COMMIT)
    assert git == [("git", "-C", "/repo", "log", "-1", "--format=%ct")]


@pytest.mark.parametrize(
    "answer",
    [
        CommandFailedError("not a git work tree"),
        ToolMissingError("git was not found on PATH"),
        "",  # a repository without commits
    ],
)
def test_source_date_epoch_without_a_commit_is_zero(monkeypatch, answer):
    def capture(*_: Any, **__: Any) -> str:
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(runner, "capture", capture)
    assert source_date_epoch(Path("."), {}) == (0, FROM_DEFAULT)


@pytest.mark.parametrize("raw", ["yesterday", "-5", "1.5"])
def test_a_bad_source_date_epoch_is_a_config_error(raw):
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH"):
        source_date_epoch(Path("."), {"SOURCE_DATE_EPOCH": raw})
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH"):
        build_epoch({"SOURCE_DATE_EPOCH": raw})


def test_a_builds_epoch_is_the_environments_or_a_fixed_zero_never_the_commits(git):
    """Compilers get a stamp no cache can make stale: not the last commit's time."""
    assert build_epoch({"SOURCE_DATE_EPOCH": "42"}) == 42
    assert build_epoch({}) == 0 and build_epoch({"SOURCE_DATE_EPOCH": " "}) == 0


# --- inputs ---------------------------------------------------------------------------------


def test_credentials_are_stripped_from_the_source_url():
    strip = inputs.without_credentials
    assert strip("https://u:tok@git.example/x.git") == "https://git.example/x.git"
    assert strip("https://tok@git.example:8443/x.git") == "https://git.example:8443/x.git"
    assert strip("git@github.com:o/x.git") == "git@github.com:o/x.git"


def test_binary_gate_refuses_dynamic_and_wrong_arch(tmp_path: Path):
    good, dynamic = tmp_path / "good", tmp_path / "dynamic"
    good.write_bytes(X86_ELF)
    dynamic.write_bytes(fake_elf(62, interp=b"/lib64/ld-linux-x86-64.so.2"))
    inputs.check_binary(good, X86_64_MUSL, "system")
    with pytest.raises(GateError, match="no-interpreter"):
        inputs.check_binary(dynamic, X86_64_MUSL, "system")
    with pytest.raises(GateError, match="architecture"):
        inputs.check_binary(good, AARCH64_MUSL, "system")


def test_without_building_a_missing_binary_is_a_package_error(tmp_path: Path):
    opts = opts_in(tmp_path)
    with pytest.raises(PackageError, match="does not build"):
        inputs.gather_binaries(
            opts, project_in(tmp_path), (X86_64_MUSL,), SYSTEM, "app", build=False
        )


def test_a_binary_that_no_longer_matches_its_record_is_not_reused(tmp_path: Path):
    opts = opts_in(tmp_path)
    plant_binary(opts).write_bytes(fake_elf(62) + b"changed")
    assert inputs.reusable(Paths.of(opts), X86_64_MUSL, SYSTEM, "app") is None


def test_size_budget():
    m = oci.ImageMeta(title="app", version="1", created_epoch=EPOCH)
    lay = oci.assemble(
        [oci.platform_image(m, oci.Platform("linux", "amd64"), b"x" * 1000)],
        {},
        version="1",
        repo="app",
    )
    package.check_budget(lay, 1.0)
    with pytest.raises(PackageError, match="size budget"):
        package.check_budget(lay, 0.000_001)


# --- the task, end to end on a fake binary ----------------------------------------------------


def test_package_writes_the_image_and_its_records(tmp_path: Path, git):
    opts = opts_in(tmp_path)
    plant_binary(opts)
    report = package.package(opts, project_in(tmp_path), targets="x86_64", allocator="system")
    assert report is not None
    assert read_package_report(opts) == report
    assert read_image_tags(opts) == report.tags
    on_disk = layout.read_layout_dir(Paths.of(opts).layout("rust-sample"))
    assert on_disk.digest == report.index_digest == report.tags.digest
    # paths in the records are project-relative: no machine's absolute path in them
    assert report.layout == "dist/oci/rust-sample"
    assert report.tarball.path == "dist/oci/rust-sample.tar"
    (platform,) = report.platforms
    assert platform.binary is not None
    assert platform.binary.path == "dist/x86_64-unknown-linux-musl/system/app"
    assert report.allocator == "system" and report.allocator_source == "flag"
    assert report.source_date_epoch == EpochFacts(value=EPOCH, origin=FROM_COMMIT)
    assert report.annotations[oci.ANN_SOURCE] == ORIGIN
    assert report.annotations[oci.ANN_REVISION] == "0123abc"
    assert report.reproducible.checked is False


def test_a_refused_binary_leaves_no_output(tmp_path: Path, git):
    opts = opts_in(tmp_path)
    plant_binary(opts, fake_elf(62, interp=b"/lib64/ld-linux-x86-64.so.2"))
    with pytest.raises(GateError):
        package.package(opts, project_in(tmp_path), targets="x86_64", allocator="system")
    assert not Paths.of(opts).oci.exists()


def test_merge_records_where_the_layouts_came_from(tmp_path: Path):
    m = oci.ImageMeta(title="app", version="1.2.3", created_epoch=EPOCH)
    dirs = []
    for spec, data in (("linux/amd64", b"amd"), ("linux/arm64/v8", b"arm")):
        img = oci.platform_image(m, oci.Platform.parse(spec), data)
        dest = tmp_path / "parts" / spec.replace("/", "-")
        layout.write_layout(oci.assemble([img], m.annotations(), version="1.2.3", repo="a"), dest)
        dirs.append(dest)
    report = package.merge(opts_in(tmp_path), dirs)
    assert report is not None
    assert report.merged_from == ("parts/linux-amd64", "parts/linux-arm64-v8")
    assert report.source_date_epoch == EpochFacts(value=EPOCH, origin=package.MERGED)
    assert [p.platform for p in report.platforms] == ["linux/amd64", "linux/arm64/v8"]
    assert report.allocator is None and all(p.binary is None for p in report.platforms)


def test_merging_a_layout_whose_manifest_lacks_config_is_a_package_error(tmp_path: Path):
    bad = tmp_path / "bad"
    made = HandMade(bad)
    no_config = made.image(manifest=lambda man: {k: v for k, v in man.items() if k != "config"})
    made.top({"schemaVersion": 2, "mediaType": oci.MEDIA_INDEX, "manifests": [no_config]})
    opts = opts_in(tmp_path)
    with pytest.raises(PackageError, match="config is missing") as e:
        package.merge(opts, [bad])
    assert str(bad) in e.value.message
    assert not Paths.of(opts).oci.exists()


# --- smoke reads the package report as a record ---------------------------------------------


def test_smoke_on_a_package_report_from_an_older_kit_is_a_record_error(tmp_path: Path):
    opts = opts_in(tmp_path)
    paths = Paths.of(opts)
    paths.oci.mkdir(parents=True)
    paths.tarball(opts.image_name).write_bytes(b"")
    old = {"schema": 1, "image": "rust-sample", "index_digest": "sha256:00"}
    paths.package_report(opts.image_name).write_text(json.dumps(old))
    with pytest.raises(RecordError) as e:
        container.smoke(opts)
    assert "rust-sample.package.json" in e.value.message
    assert "schema 1" in e.value.message and f"version {2}" in e.value.message
    assert e.value.exit_code == 2


# --- the reproducibility check's parent side --------------------------------------------------


def test_the_child_gets_the_same_options(tmp_path: Path):
    opts = opts_in(
        tmp_path,
        bins="app",
        allocator_link="inject",
        smoke='{"cli": {"argv": ["--help"], "stdout-regex": "usage"}}',
        dist_dir=str(tmp_path / "elsewhere"),
        bench_connections="8,32",
        size_budget_mb=3.5,
    )
    flags = json.loads(json.dumps(opts.as_flags()))  # as the request file carries them
    assert resolve_options(tmp_path, flags=flags, environ={}) == opts


def test_an_unbounded_size_budget_is_left_out_of_the_childs_options(tmp_path: Path):
    opts = dataclasses.replace(opts_in(tmp_path), size_budget_mb=float("inf"))
    flags = opts.as_flags()
    assert "size_budget_mb" not in flags
    json.dumps(flags, allow_nan=False)  # what the request file can hold


def test_comparing_two_packagings_lists_every_differing_file(tmp_path: Path):
    m = oci.ImageMeta(title="app", version="1.2.3", created_epoch=EPOCH)
    lay = oci.assemble(
        [oci.platform_image(m, oci.Platform("linux", "amd64"), b"bin")],
        m.annotations(),
        version="1.2.3",
        repo="app",
    )
    sides = []
    for side in ("first", "second"):
        paths = Paths(root=tmp_path, dist=tmp_path / side, target=tmp_path, reports=tmp_path)
        layout.write_layout(lay, paths.layout("app"))
        paths.tarball("app").write_bytes(b"tar")
        sides.append(paths)
    first, second = sides
    files = len(layout.layout_files(lay)) + 1
    assert repro.compare_outputs(first, second, "app") == files
    (second.layout("app") / "index.json").write_bytes(b"{}")
    second.tarball("app").write_bytes(b"other")
    with pytest.raises(PackageError, match=r"differ in: app\.tar, app/index\.json$"):
        repro.compare_outputs(first, second, "app")
