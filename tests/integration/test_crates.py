"""Published crates, by name and exact version, built from crates.io's source through the kit
(issue 9, sections 4 and 9): fetched by cargo, built with their own Cargo.lock, gated, run,
packaged and run in Docker.

Three real crates of different shapes (section 9), their settings given as a user gives them
for a crate that is not theirs (KIT_* variables):
- zst_compress: a CLI with C in a -sys crate (zstd-sys, threaded C that calls malloc);
- echoreq: an axum (Tokio) server, configured by PORT only, with no signal handler;
- cargo-binutils: one package with twenty binaries (KIT_BINS picks the ones that run without
  llvm-tools). A published crate cannot be a workspace (crates.io strips [workspace]); the
  workspace shape is tests/fixtures/workspace's (test_release.py).
CI runs a cheap slice (x86_64, one allocator each); `nox -s matrix` (SRK_FULL_MATRIX=1) runs
every crate x {x86_64, aarch64} x {system, jemalloc, mimalloc}, the image of each, ripgrep
(which chooses jemalloc itself) and echoreq's quick benchmark. Downloads go through cargo's
registry cache and the kit's target dir (kit-crates/), so each crate is fetched once a run.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kit.build.record import BuildRecord
from kit.core.records import read_record
from tests.integration.conftest import kit_cli

# A CLI whose release profile (lto, one codegen unit) matches rust_sample's, so the std built
# from source for it is shared in the repository's target dir rather than built again.
HEXYL = ("hexyl", "0.16.0")
# CI builds the x86_64 slice; `nox -s matrix` (SRK_FULL_MATRIX=1) adds aarch64, run under qemu.
FULL = bool(os.environ.get("SRK_FULL_MATRIX"))
TARGETS = ["x86_64", "aarch64"] if FULL else ["x86_64"]
matrix_only = pytest.mark.skipif(not FULL, reason="full matrix only (nox -s matrix)")
EMULATOR = {"x86_64": [], "aarch64": ["qemu-aarch64-static"]}


@pytest.mark.parametrize("arch", TARGETS)
def test_a_published_cli_builds_static_and_runs(arch: str, tmp_path: Path):
    name, version = HEXYL
    done = kit_cli(
        "build",
        "--crate",
        f"{name}@{version}",
        "-t",
        arch,
        "-a",
        "system",
        env={"KIT_DIST_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    binary = tmp_path / f"{arch}-unknown-linux-musl" / "system" / name
    record = read_record(BuildRecord, binary.with_name(f"{name}.json"))
    assert record.elf in {"statically linked", "static-pie linked"}
    assert all(g.passed for g in record.gates)
    assert "--locked" in record.command and f"kit-crates/{name}-{version}" in record.command
    run = [*EMULATOR[arch], str(binary)]
    out = subprocess.run([*run, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{name} {version}"
    dumped = subprocess.run(
        [*run, "--plain"], input="static", capture_output=True, text=True, check=True
    )
    assert "73 74 61 74 69 63" in dumped.stdout  # "static", as hexyl shows it


@pytest.mark.parametrize(
    ("spec", "needle"),
    [("hexyl", "NAME@VERSION"), ("hexyl@^0.16", "exact version")],
)
def test_a_crate_spec_without_an_exact_version_exits_2(spec: str, needle: str, tmp_path: Path):
    done = kit_cli("build", "--crate", spec, env={"KIT_DIST_DIR": str(tmp_path)}, timeout=120)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr


# --- section 9: three real crates of different shapes -----------------------------------------

# echoreq reads only PORT. Unbindable, it makes the binary start Tokio, print its line and exit
# 101 (its unwrap panics), which is the CLI probe and the run the allocator-live gate reads:
# a server that exits has no other way to run once and end. The server probe (and the image,
# and the bench) set PORT themselves.
ECHOREQ_CLI_PORT = "65536"
ECHOREQ_SMOKE = {
    "cli": {"argv": [], "exit-code": 101, "stdout-regex": f"^Listening on {ECHOREQ_CLI_PORT}$"},
    "server": {
        "ready-path": "/ping?x=1",
        "requests": [{"path": "/ping?x=1", "body-regex": r"^GET /ping\?x=1\n"}],
        # No signal handler: outside a container SIGTERM kills it, and as PID 1 in one it
        # ignores SIGTERM. It can only be stopped by SIGKILL, so it declares that.
        "stop-signal": "SIGKILL",
        "require-clean-exit": False,
    },
}


@dataclass(frozen=True)
class Crate:
    name: str
    version: str
    smoke: dict
    bins: tuple[str, ...] = ()  # () = the package's one binary, named as the crate
    env: dict[str, str] = field(default_factory=dict)

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def binaries(self) -> tuple[str, ...]:
        return self.bins or (self.name,)

    def kit_env(self, tmp: Path) -> dict[str, str]:
        env = {
            "KIT_DIST_DIR": str(tmp / "dist"),
            "KIT_REPORTS_DIR": str(tmp / "reports"),
            "KIT_SMOKE": json.dumps(self.smoke),
            **self.env,
        }
        if self.bins:
            env["KIT_BINS"] = ",".join(self.bins)
        return env


ZST = Crate(
    "zst_compress",
    "0.4.0",
    {"cli": {"argv": ["--version"], "stdout-regex": r"^zst_compress 0\.4\.0$"}},
)
ECHOREQ = Crate("echoreq", "1.0.0", ECHOREQ_SMOKE, env={"PORT": ECHOREQ_CLI_PORT})
BINUTILS_ALL = ("cargo-size", "cargo-nm", "cargo-objdump", "cargo-strip")
BINUTILS = Crate(
    "cargo-binutils",
    "0.4.0",
    {"cli": {"argv": ["--version"], "stdout-regex": r"^cargo-[a-z]+ 0\.4\.0$"}},
    bins=BINUTILS_ALL if FULL else ("cargo-size", "cargo-nm"),
)
ALLOCATORS = ("system", "jemalloc", "mimalloc")


def build_crate(crate: Crate, arch: str, allocators: tuple[str, ...], tmp: Path) -> dict:
    """`invoke build --crate` for these allocators; {(allocator, binary): record}, every gate
    checked: static, the allocator injected at link time and live when it is not the libc's."""
    done = kit_cli(
        "build", "--crate", crate.spec, "-t", arch, "-a", ",".join(allocators),
        env=crate.kit_env(tmp),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    records = {}
    for allocator in allocators:
        for name in crate.binaries:
            path = tmp / "dist" / f"{arch}-unknown-linux-musl" / allocator / f"{name}.json"
            record = read_record(BuildRecord, path)
            assert record.elf in {"statically linked", "static-pie linked"}, record.elf
            assert all(g.passed for g in record.gates), record.gates
            assert record.allocator_linked == allocator
            gates = {g.name for g in record.gates}
            if allocator == "system":
                assert record.allocator_route == "libc"
            else:
                assert record.allocator_route == "injected" and "allocator-live" in gates
            assert f"kit-crates/{crate.name}-{crate.version}" in record.command
            assert record.smoke.emulator == (None if arch == "x86_64" else "qemu-aarch64-static")
            records[allocator, name] = record
    return records


def run_built(arch: str, binary: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*EMULATOR[arch], str(binary), *args], capture_output=True, text=True, timeout=120, **kw
    )


def zst_round_trip(arch: str, binary: Path, work: Path) -> None:
    """zst_compress packs D/item into D/item.tar.zst and unpacks it again. It exits 0 even on
    errors, so the files are what is checked."""
    item = work / "item"
    item.mkdir(parents=True)
    content = "static musl " * 5000
    (item / "f.txt").write_text(content)
    packed = run_built(arch, binary, str(work.resolve()))
    assert (work / "item.tar.zst").is_file() and not item.exists(), packed.stderr
    assert (work / "item.tar.zst").stat().st_size < len(content) // 10
    unpacked = run_built(arch, binary, "-x", str(work.resolve()))
    assert (item / "f.txt").read_text() == content, unpacked.stderr


def package_and_smoke(crate: Crate, allocator: str, tmp: Path, bin: str | None = None) -> str:
    """`invoke package --crate` (host arch) from the records in dist/, then `invoke smoke
    --crate`: the image loads in Docker and answers its probe there. Returns the smoke output."""
    env = crate.kit_env(tmp)
    extra = ["--bin", bin] if bin else []
    done = kit_cli(
        "package", "--crate", crate.spec, "-t", "x86_64", "-a", allocator, *extra, env=env
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(next((tmp / "dist" / "oci").glob("*.package.json")).read_text())
    assert report["allocator"] == allocator
    smoked = kit_cli("smoke", "--crate", crate.spec, env=env, timeout=600)
    assert smoked.returncode == 0, smoked.stdout[-2000:] + smoked.stderr[-3000:]
    assert "Traceback" not in smoked.stderr
    smoke = json.loads((tmp / "reports" / "smoke.json").read_text())
    return json.dumps(smoke)


# CI slice: x86_64, one allocator each, one image.


def test_zst_compress_c_sys_with_mimalloc_injected(tmp_path: Path):
    records = build_crate(ZST, "x86_64", ("mimalloc",), tmp_path)
    binary = tmp_path / "dist" / records["mimalloc", ZST.name].path
    zst_round_trip("x86_64", binary, tmp_path / "work")


def test_echoreq_server_builds_probes_and_runs_in_docker(tmp_path: Path):
    records = build_crate(ECHOREQ, "x86_64", ("system",), tmp_path)
    assert records["system", "echoreq"].smoke.output == f"Listening on {ECHOREQ_CLI_PORT}"
    smoke = package_and_smoke(ECHOREQ, "system", tmp_path)
    assert "/ping?x=1" in smoke


def test_cargo_binutils_several_binaries(tmp_path: Path):
    allocator = "jemalloc"
    records = build_crate(BINUTILS, "x86_64", (allocator,), tmp_path)
    for name in BINUTILS.bins:
        assert records[allocator, name].smoke.output == f"{name} 0.4.0"
    dist = tmp_path / "dist" / "x86_64-unknown-linux-musl" / allocator
    assert {p.stem for p in dist.glob("*.json")} == set(BINUTILS.bins)  # KIT_BINS restricts


# Full matrix: every crate x target x allocator, and each crate's image.


@matrix_only
@pytest.mark.parametrize("crate", [ZST, ECHOREQ, BINUTILS], ids=lambda c: c.name)
@pytest.mark.parametrize("arch", TARGETS)
def test_real_crate_matrix(crate: Crate, arch: str, tmp_path: Path):
    records = build_crate(crate, arch, ALLOCATORS, tmp_path)
    for allocator in ALLOCATORS:
        for name in crate.binaries:
            binary = tmp_path / "dist" / records[allocator, name].path
            if crate is ZST:
                assert records[allocator, name].smoke.output == "zst_compress 0.4.0"
                zst_round_trip(arch, binary, tmp_path / f"work-{allocator}")
            elif crate is ECHOREQ:
                assert records[allocator, name].smoke.output == "Listening on 65536"
            else:
                out = run_built(arch, binary, "--version")
                assert out.returncode == 0 and out.stdout.strip() == f"{name} 0.4.0"
    if arch == "x86_64":  # the image is run on this host's arch; both allocators injected
        for allocator in ("system", "mimalloc"):
            package_and_smoke(crate, allocator, tmp_path, bin=crate.binaries[0])


@matrix_only
def test_ripgrep_chooses_jemalloc_itself(tmp_path: Path):
    """ripgrep sets #[global_allocator] (jemalloc on musl 64-bit): whatever is asked, the
    crate's allocator is recorded, with route "crate", and is live."""
    rg = Crate(
        "ripgrep",
        "15.2.0",
        {"cli": {"argv": ["--version"], "stdout-regex": r"^ripgrep 15\.2\.0"}},
        bins=("rg",),
    )
    done = kit_cli(
        "build", "--crate", rg.spec, "-t", "x86_64", "-a", "system,mimalloc",
        env=rg.kit_env(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for allocator in ("system", "mimalloc"):
        path = tmp_path / "dist" / "x86_64-unknown-linux-musl" / allocator / "rg.json"
        record = read_record(BuildRecord, path)
        assert record.allocator_linked == "jemalloc" and record.allocator_route == "crate"
        assert {g.name: g.passed for g in record.gates}.get("allocator-live") is True
        assert all(g.passed for g in record.gates), record.gates


@matrix_only
def test_echoreq_quick_bench_picks_a_winner(tmp_path: Path):
    """`invoke bench --quick --crate`: echoreq's /ping under wrk, every variant (musl x three
    allocators, static glibc), a winner in the report."""
    workloads = {"http": [{"name": "ping", "argv": [], "ready-path": "/ping", "path": "/ping"}]}
    env = {**ECHOREQ.kit_env(tmp_path), "KIT_BENCH_WORKLOADS": json.dumps(workloads)}
    done = kit_cli("bench", "--quick", "--crate", ECHOREQ.spec, env=env, timeout=3600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    winner = json.loads((tmp_path / "reports" / "bench" / "winner.json").read_text())
    assert winner["allocator"] in ALLOCATORS and winner["mode"] == "quick" and winner["reason"]
    assert winner["metrics"]["throughput_rps"] > 0
    runs = [d for d in (tmp_path / "reports" / "bench").iterdir() if d.is_dir()]
    report = next(r / "report.md" for r in runs if (r / "report.md").is_file()).read_text()
    assert "## Verdict" in report
    print(report)  # the verdict, for the log
