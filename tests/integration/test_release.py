"""Issue 5 for real: SBOM, registry round trip, the workspace fixture, and release-check failing
gate by gate when something is broken on purpose. Everything reuses the shared target/ and the
x86_64/system build of rust_sample, so after the first build these tests take seconds."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kit.build.project import Project, read_project
from kit.build.record import BuildRecord
from kit.build.run import build_matrix
from kit.core.allocators import SYSTEM
from kit.core.errors import ReleaseCheckFailed
from kit.core.options import Options, resolve_options
from kit.core.paths import Paths
from kit.core.records import read_record
from kit.core.targets import X86_64_MUSL
from kit.image.report import PackageReport
from kit.release.gates import GATE_NAMES
from kit.release.report import ReleaseReport

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = ROOT / "tests" / "fixtures" / "workspace"


@pytest.fixture(scope="module")
def opts(tmp_path_factory: pytest.TempPathFactory) -> Options:
    """The repo's settings, with reports and the test image kept apart from a user's."""
    reports = tmp_path_factory.mktemp("reports")
    base = resolve_options(ROOT, environ={})
    return dataclasses.replace(base, reports_dir=reports, image_name="kit-test-release")


@pytest.fixture(scope="module")
def project(opts: Options) -> Project:
    return read_project(opts.manifest)


@pytest.fixture(scope="module")
def record(opts: Options, project: Project) -> BuildRecord:
    """rust_sample for x86_64 with the system allocator (incremental: reuses target/)."""
    (rec,) = [
        r for r in build_matrix(opts, project, (X86_64_MUSL,), (SYSTEM,)) if r.name == "rust_sample"
    ]
    return rec


@pytest.fixture(scope="module")
def packaged(opts: Options, project: Project, record: BuildRecord) -> PackageReport:
    from kit.image import package as pkg

    report = pkg.package(opts, project, targets="x86_64", allocator="system")
    assert report is not None
    return report


def test_sbom_for_rust_sample(opts: Options, record: BuildRecord, tmp_path: Path) -> None:
    from kit.release.sbom import write_sbom

    result = write_sbom(opts, record, tmp_path / "sbom.json")
    assert result is not None
    text = result.path.read_text()
    doc = json.loads(text)
    names = {c["name"] for c in doc["components"]}
    assert {"tokio", "axum", "musl-malloc", "musl", "rust-std", "rustc"} <= names
    assert "tikv-jemallocator" not in names  # the feature set of this build, not every feature
    assert doc["metadata"]["component"]["hashes"][0]["content"] == record.sha256
    assert result.crates > 20
    # without SOURCE_DATE_EPOCH the time is the last commit's: the same bytes again
    again = write_sbom(opts, record, tmp_path / "again.json")
    assert again is not None and again.path.read_text() == text


def test_workspace_fixture_builds_through_the_kit(tmp_path: Path) -> None:
    ws = resolve_options(WORKSPACE, environ={})
    ws = dataclasses.replace(ws, dist_dir=tmp_path / "dist")
    project = read_project(ws.manifest)
    records = {r.name: r for r in build_matrix(ws, project, (X86_64_MUSL,), (SYSTEM,))}
    assert set(records) == {"ws-hello", "ws-own-alloc"}
    hello = records["ws-hello"]
    assert (hello.allocator_linked, hello.allocator_route) == ("system", "libc")
    # ws-own-alloc sets its own #[global_allocator]: found in the plain build, with no config,
    # recorded as the crate's choice, and gated (linked and live) as mimalloc.
    own = records["ws-own-alloc"]
    assert (own.allocator, own.allocator_linked, own.allocator_route) == (
        "system",
        "mimalloc",
        "crate",
    )
    gates = {g.name: g for g in own.gates}
    assert gates["allocator-linked"].passed and "mimalloc" in gates["allocator-linked"].detail
    assert gates["allocator-live"].passed


def _report(opts: Options) -> ReleaseReport:
    return read_record(ReleaseReport, Paths.of(opts).release / "report.json")


def test_release_check_fails_on_a_one_byte_size_budget(
    opts: Options, packaged: PackageReport
) -> None:
    from kit.release.checklist import check

    tiny = dataclasses.replace(opts, size_budget_mb=1e-6)
    with pytest.raises(ReleaseCheckFailed, match=r"size-budget: over the 1e-06 MB budget"):
        check(tiny, only="size-budget", targets="x86_64", allocators="system")
    gates = {g.name: g for g in _report(tiny).gates}
    assert gates["size-budget"].status == "failed"
    assert gates["publish"].status == "skipped"


def test_release_check_fails_on_a_dirty_tree(tmp_path: Path) -> None:
    from kit.release.checklist import check

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    cl_opts = resolve_options(clone, environ={})
    assert check(cl_opts, only="clean-tree").ok  # a fresh clone is clean

    (clone / "stray.txt").write_text("not committed\n")
    with pytest.raises(ReleaseCheckFailed, match=r"clean-tree: 1 uncommitted path\(s\): stray.txt"):
        check(cl_opts, only="clean-tree")
    assert _report(cl_opts).gates[1].status == "failed"


def test_unknown_gate_is_a_usage_error(kit) -> None:
    done = kit("release-check", "--only", "sbomm")
    assert done.returncode == 2, done.stderr
    assert "Perhaps you meant 'sbom'" in done.stderr


def test_release_check_passes_end_to_end(kit, quick_bench) -> None:
    """`invoke release-check` on rust_sample, every gate run, as a user runs it before a release.

    The bench gate reads the session's quick-bench winner; as its baseline it is given that same
    winner.json, so here the gate must run and find its inputs (its judgement, a regression
    shown by the whole interval falling below the baseline, is unit-tested in test_release.py).
    """
    reports, _ = quick_bench
    key = reports / "signing-key.pem"  # the release's key, made for the test
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    env = {
        "KIT_SIGNING_KEY": str(key),
        "KIT_REPORTS_DIR": str(reports),
        "KIT_BENCH_BASELINE": str(reports / "bench" / "winner.json"),
        "KIT_IMAGE_NAME": "kit-test-e2e",
    }
    # The workflow gate is left out here only: another image name and baseline would make
    # the committed workflow stale by design; test_the_committed_workflow_is_fresh runs it.
    done = kit("release-check", "--skip", "workflow", env=env)
    report = read_record(ReleaseReport, reports / "release" / "report.json")
    statuses = {g.name: str(g.status) for g in report.gates}
    print(
        "\n".join(f"{g.name}: {g.status} {g.seconds:.1f}s {g.detail[:120]}" for g in report.gates)
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert tuple(statuses) == GATE_NAMES  # every gate, in checklist order
    assert statuses.pop("workflow") == "skipped"
    assert set(statuses.values()) == {"passed"}, statuses


def test_the_committed_workflow_is_fresh(kit, tmp_path: Path) -> None:
    """The repository's own .github/workflows/release.yml is what `invoke ci-matrix` makes from
    committed files, in this clone as on any other; and in a GitHub Actions job the checklist
    lands in the job's summary."""
    summary = tmp_path / "summary.md"
    env = {"KIT_REPORTS_DIR": str(tmp_path / "reports"), "GITHUB_STEP_SUMMARY": str(summary)}
    done = kit("release-check", "--only", "workflow", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert summary.read_text().startswith("# Release check: PASSED")
    assert "| workflow | ✅ passed" in summary.read_text()


def test_release_check_fails_on_a_dynamic_binary(kit, tmp_path: Path) -> None:
    """A project whose cargo config turns crt-static off gets a dynamically linked binary: the
    build gate fails, gate by gate, and nothing reaches dist/."""
    done = kit(
        "release-check",
        "--only",
        "build",
        "--target",
        "x86_64",
        "--allocator",
        "system",
        "--manifest-path",
        str(ROOT / "tests" / "fixtures" / "dynamic" / "Cargo.toml"),
        env={"KIT_REPORTS_DIR": str(tmp_path), "KIT_DIST_DIR": str(tmp_path / "dist")},
    )
    assert done.returncode == 10, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    report = read_record(ReleaseReport, tmp_path / "release" / "report.json")
    build = next(g for g in report.gates if g.name == "build")
    assert build.status == "failed", build
    assert "no-interpreter: PT_INTERP /lib/ld-musl-x86_64.so.1" in build.detail
    assert "no-needed: DT_NEEDED libc.so" in build.detail
    assert "build:" in done.stderr
    dist = tmp_path / "dist"
    assert not dist.exists() or not any(p.is_file() for p in dist.rglob("*"))
