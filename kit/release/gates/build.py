"""Gates on the built binaries: the build matrix, foreign-arch runs, the SBOM."""

from __future__ import annotations

from kit.core.targets import host_arch
from kit.release.context import Context
from kit.release.model import NotRun, Outcome


def gate_build(ctx: Context) -> Outcome:
    # A record exists only for a binary that passed every gate: build_matrix raises GateError
    # (this gate's failure, with each failed check) before any record of a failing one.
    records = ctx.records()
    rows = [
        {
            "binary": r.name,
            "triple": r.triple,
            "allocator": r.allocator,
            "linked": r.allocator_linked,
            "size": r.size,
            "build_s": r.duration_s,
            "gates": len(r.gates),
            "elf": r.elf,
            "ran": r.smoke.emulator or "native",
        }
        for r in records
    ]
    sizes = ", ".join(f"{r.arch}/{r.allocator} {r.size / 1e6:.2f} MB" for r in records)
    checks = sum(len(r.gates) for r in records)
    return Outcome(
        True,
        f"{len(records)} binaries static, allocator proven, {checks} checks: {sizes}",
        {"binaries": rows},
    )


def gate_qemu_smoke(ctx: Context) -> Outcome:
    foreign = [t for t in ctx.targets if not t.runs_natively_on(host_arch())]
    if not foreign:
        raise NotRun(
            f"no foreign-arch target in the matrix ({', '.join(t.arch for t in ctx.targets)})"
        )
    # Every foreign-arch binary in the matrix was run under qemu-user before its record was
    # written (kit.build.smoke): one that could not run fails the build gate, and leaves this
    # one not-run. What is left to do here is to show what ran, and under what.
    records = ctx.need("the build matrix", ctx.records)
    emulated = [r for r in records if r.smoke.emulator]
    runs = {f"{r.triple}/{r.allocator}": r.smoke.output for r in emulated}
    emulators = sorted({r.smoke.emulator for r in emulated if r.smoke.emulator})
    return Outcome(
        True,
        f"{len(emulated)} foreign-arch binaries ran under {', '.join(emulators)}",
        {"runs": runs},
    )


def gate_sbom(ctx: Context) -> Outcome:
    from kit.release.sbom import write_sbom

    records = ctx.need("the build matrix", ctx.records)
    ship = ctx.shipping.allocator.name
    written = [(r, write_sbom(ctx.opts, r)) for r in records if r.allocator == ship]
    done = [(r, s) for r, s in written if s is not None]  # None: a dry run wrote nothing
    figures = {f"{r.triple}/{r.name}": s.figures() for r, s in done}
    counts = ", ".join(f"{r.arch} {s.crates} crates" for r, s in done)
    return Outcome(True, f"{len(done)} CycloneDX 1.6 SBOM(s), schema-valid: {counts}", figures)
