"""The release gates, in checklist order: each is a name, a title and a function of the
shared Context (kit.release.context) that returns an Outcome or raises NotRun."""

from __future__ import annotations

from kit.release.gates.bench import gate_bench
from kit.release.gates.build import gate_build, gate_qemu_smoke, gate_sbom
from kit.release.gates.image import (
    gate_container_smoke,
    gate_provenance,
    gate_publish,
    gate_reproducible,
    gate_size,
)
from kit.release.gates.source import gate_cargo_test, gate_clean_tree, gate_lint, gate_version
from kit.release.gates.workflow import gate_workflow
from kit.release.model import Gate

GATES: tuple[Gate, ...] = (
    Gate("version", "version consistency (Cargo.toml vs tag at HEAD)", gate_version),
    Gate("clean-tree", "clean work tree", gate_clean_tree),
    Gate("lint", "lint (ruff; cargo fmt, clippy -D warnings)", gate_lint),
    Gate("workflow", "the committed CI workflow is what ci-matrix generates", gate_workflow),
    Gate("cargo-test", "the crate's own cargo test", gate_cargo_test),
    Gate("build", "build matrix: static and allocator gates", gate_build),
    Gate("qemu-smoke", "foreign-arch binaries run under qemu-user", gate_qemu_smoke),
    Gate("bench", "bench winner present, no regression vs baseline", gate_bench),
    Gate("reproducible", "image reproducibility", gate_reproducible),
    Gate("size-budget", "image size budget", gate_size),
    Gate("container-smoke", "container smoke (Docker)", gate_container_smoke),
    Gate("sbom", "SBOM (CycloneDX from cargo metadata)", gate_sbom),
    Gate("provenance", "SBOMs and signed provenance attached, invoke verify", gate_provenance),
    Gate("publish", "publish dry run: TLS and auth, pulled back by digest", gate_publish),
)
GATE_NAMES = tuple(g.name for g in GATES)
