"""`invoke release-check`: the pre-release checklist, as data (issue 5).

Each Gate is a name, a title and a function of the shared Context. A gate ends in one of:

    passed    it ran and what it measured is within bounds
    failed    it ran and something is wrong (the detail says what)
    not-run   it could not run (a missing tool, no engine, a prerequisite that failed, Ctrl-C):
              the reason is recorded, and the checklist fails, because an unchecked gate is not
              a passed one
    skipped   the user chose not to run it (--skip, --only, gates-skip): recorded, not a failure

Gates share expensive work through the Context (the build matrix, the packaged image), computed
once on first use. A gate that needs work which failed is not-run, naming the gate to look at.
The report (reports/release/report.md and report.json) is written atomically, also after Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from kit.core import console, fs, runner
from kit.core.allocators import Allocator, parse_allocator
from kit.core.errors import (
    CommandFailedError,
    ConfigError,
    EngineUnavailableError,
    KitError,
    ToolMissingError,
)
from kit.core.options import Options
from kit.core.targets import Target

REPORT_SCHEMA = 1


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not-run"
    SKIPPED = "skipped"


class NotRun(Exception):
    """Raised by a gate that cannot run here; the message is the reason."""


@dataclass(frozen=True)
class Outcome:
    """What a gate that ran found."""

    passed: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GateResult:
    name: str
    title: str
    status: Status
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": str(self.status),
            "detail": self.detail,
            "figures": self.figures,
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class Gate:
    name: str
    title: str
    run: Callable[[Context], Outcome]


# --- shared work --------------------------------------------------------------------------------


class Context:
    """Options plus the expensive results several gates share, each computed at most once."""

    def __init__(
        self, opts: Options, targets: tuple[Target, ...], allocators: tuple[Allocator, ...]
    ):
        self.opts = opts
        self.targets = targets
        self.allocators = allocators
        self._memo: dict[str, tuple[bool, Any]] = {}

    def _once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._memo:
            try:
                self._memo[key] = (True, make())
            except KitError as e:
                self._memo[key] = (False, e)
        ok, value = self._memo[key]
        if not ok:
            raise value
        return value

    def need(self, key: str, what: str, make: Callable[[], Any]) -> Any:
        """Shared work for a gate that depends on it: its failure makes this gate not-run."""
        try:
            return self._once(key, make)
        except KitError as e:
            raise NotRun(
                f"needs {what}, which did not succeed: {e.message.splitlines()[0]}"
            ) from None

    # the artifacts -------------------------------------------------------------------------

    def records(self) -> list[dict]:
        from kit.build.run import build_matrix

        allocs = self.allocators
        ship = self.shipping_allocator()
        if ship not in allocs:
            allocs = (*allocs, ship)
        return self._once("build", lambda: build_matrix(self.opts, self.targets, allocs))

    def winner(self) -> dict | None:
        path = winner_path(self.opts)
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def shipping_allocator(self) -> Allocator:
        """The bench winner when there is one, else the first configured allocator."""
        w = self.winner()
        if isinstance(w, dict) and isinstance(w.get("allocator"), str):
            try:
                return parse_allocator(w["allocator"])
            except ConfigError:
                pass
        return self.allocators[0]

    def package(self) -> dict:
        """The packaged image (invoke package), for the shipping allocator and every target.

        The size budget is judged by its own gate, so packaging here is asked not to enforce
        it: otherwise a blown budget would leave every image gate not-run instead of one failed.
        """
        from kit.image import package as pkg

        def make() -> dict:
            self.need("build", "the build matrix", self.records)
            unbounded = dataclasses.replace(self.opts, size_budget_mb=float("inf"))
            return pkg.package(
                unbounded,
                targets=",".join(t.triple for t in self.targets),
                allocator=self.shipping_allocator().name,
            )

        return self._once("package", make)


def winner_path(opts: Options) -> Path:
    return opts.path(opts.reports_dir) / "bench" / "winner.json"


# --- the gates ----------------------------------------------------------------------------------


def _git(opts: Options, *args: str) -> str:
    if runner.which("git") is None:
        raise NotRun("git is not installed")
    try:
        # not stripped: `git status --porcelain` lines start with a meaningful space
        return runner.run(["git", *args], cwd=opts.root, echo=False).stdout
    except CommandFailedError as e:
        raise NotRun(f"{opts.root} is not a git work tree ({e.output.strip()[:120]})") from None


_VERSION_TAG = re.compile(
    r"^(?:(?P<pkg>.+?)[-@/])?v?(?P<version>\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?)$"
)


def version_mismatches(versions: dict[str, str], primary: str, tags: Iterable[str]) -> list[str]:
    """Problems between Cargo versions and release tags at HEAD (pure).

    `v1.2.3` / `1.2.3` speak for the primary package; `name-v1.2.3`, `name@1.2.3` or
    `name/v1.2.3` for that package. Tags that are not version tags are ignored.
    """
    problems = []
    for tag in tags:
        m = _VERSION_TAG.match(tag)
        if not m:
            continue
        pkg = m["pkg"] or primary
        if pkg not in versions:
            problems.append(f"tag {tag} names package {pkg!r}, which is not in the project")
        elif versions[pkg] != m["version"]:
            problems.append(
                f"tag {tag} says {m['version']}, {pkg}'s Cargo.toml says {versions[pkg]}"
            )
    return problems


def gate_version(ctx: Context) -> Outcome:
    from kit.build.project import read_project

    project = read_project(ctx.opts.manifest)
    versions = {p.name: p.version for p in project.packages}
    tags = sorted(_git(ctx.opts, "tag", "--points-at", "HEAD").split())
    problems = version_mismatches(versions, project.primary.name, tags)
    shown = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
    figures = {"versions": versions, "tags_at_head": tags}
    if problems:
        return Outcome(False, "; ".join(problems), figures)
    if not any(_VERSION_TAG.match(t) for t in tags):
        return Outcome(True, f"{shown}; no version tag at HEAD, nothing to compare", figures)
    return Outcome(True, f"{shown} matches tag(s) {', '.join(tags)}", figures)


def gate_clean_tree(ctx: Context) -> Outcome:
    out = _git(ctx.opts, "status", "--porcelain", "--untracked-files=normal")
    dirty = [line for line in out.splitlines() if line.strip()]
    figures = {"dirty_paths": len(dirty)}
    if dirty:
        shown = ", ".join(line[3:].strip() for line in dirty[:8]) + (
            " ..." if len(dirty) > 8 else ""
        )
        return Outcome(False, f"{len(dirty)} uncommitted path(s): {shown}", figures)
    return Outcome(True, "git status --porcelain is empty", figures)


def _cargo_env(opts: Options) -> dict[str, str]:
    return {"CARGO_TARGET_DIR": str(opts.path(opts.target_dir))}


def _check(
    argv: list[str], opts: Options, what: str, env: dict[str, str] | None = None
) -> tuple[bool, str, str]:
    """Run a checker that exits non-zero on findings: (clean, the tail of its output, all of it).
    Every exit code is accepted here because a finding is the gate's verdict, not an error."""
    done = runner.run(argv, cwd=opts.root, env=env, ok=range(0, 256), what=what, timeout=1800)
    text = (done.stdout + "\n" + done.stderr).strip()
    tail = "\n".join(text.splitlines()[-12:])
    return done.returncode == 0, tail, text


def gate_lint(ctx: Context) -> Outcome:
    opts = ctx.opts
    manifest = str(opts.manifest)
    checks = {
        "ruff check": ["ruff", "check", "."],
        "ruff format --check": ["ruff", "format", "--check", "."],
        "cargo fmt --check": ["cargo", "fmt", "--all", "--manifest-path", manifest, "--check"],
        "cargo clippy -D warnings": [
            "cargo",
            "clippy",
            "--manifest-path",
            manifest,
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    }
    failed: list[str] = []
    figures: dict[str, Any] = {}
    for what, argv in checks.items():
        ok, tail, _ = _check(argv, opts, what, _cargo_env(opts) if argv[0] == "cargo" else None)
        figures[what] = "clean" if ok else "findings"
        if not ok:
            failed.append(f"{what}:\n{tail}")
    if failed:
        names = ", ".join(k for k, v in figures.items() if v != "clean")
        return Outcome(False, f"findings from {names}\n" + "\n".join(failed), figures)
    return Outcome(
        True, "ruff check, ruff format, cargo fmt and clippy -D warnings are clean", figures
    )


def gate_cargo_test(ctx: Context) -> Outcome:
    opts = ctx.opts
    argv = ["cargo", "test", "--manifest-path", str(opts.manifest), "--workspace", "--locked"]
    ok, tail, text = _check(argv, opts, "cargo test", _cargo_env(opts))
    # the totals come from cargo's own summary lines, one per test binary
    passed = sum(int(n) for n in re.findall(r"test result: \w+\. (\d+) passed", text))
    failed = sum(int(n) for n in re.findall(r"; (\d+) failed", text))
    figures = {"tests_passed": passed, "tests_failed": failed}
    if ok:
        return Outcome(True, f"{passed} tests passed", figures)
    return Outcome(False, f"cargo test failed ({failed} failed):\n{tail}", figures)


def gate_build(ctx: Context) -> Outcome:
    records = ctx.records()
    rows = [
        {
            "binary": r["name"],
            "triple": r["triple"],
            "allocator": r["allocator"],
            "linked": r.get("allocator_linked", r["allocator"]),
            "size": r["size"],
            "build_s": r["duration_s"],
            "gates": len(r["gates"]),
            "elf": r.get("elf"),
            "ran": r["smoke"]["emulator"] or "native",
        }
        for r in records
    ]
    failed = [
        f"{r['name']} {r['triple']}/{r['allocator']}: {g['name']} {g['detail']}"
        for r in records
        for g in r["gates"]
        if not g["passed"]
    ]
    sizes = ", ".join(
        f"{r['triple'].split('-')[0]}/{r['allocator']} {r['size'] / 1e6:.2f} MB" for r in records
    )
    if failed:
        return Outcome(False, "; ".join(failed), {"binaries": rows})
    gates = sum(len(r["gates"]) for r in records)
    return Outcome(
        True,
        f"{len(records)} binaries static, allocator proven, {gates} checks: {sizes}",
        {"binaries": rows},
    )


def gate_qemu_smoke(ctx: Context) -> Outcome:
    from kit.core.targets import host_arch

    foreign = [t for t in ctx.targets if not t.runs_natively_on(host_arch())]
    if not foreign:
        raise NotRun(
            f"no foreign-arch target in the matrix ({', '.join(t.arch for t in ctx.targets)})"
        )
    records = ctx.need("build", "the build matrix", ctx.records)
    emulated = [r for r in records if r["smoke"]["emulator"]]
    if not emulated:
        return Outcome(False, "no binary was run under qemu-user", {})
    runs = {f"{r['triple']}/{r['allocator']}": r["smoke"]["output"] for r in emulated}
    return Outcome(
        True,
        f"{len(emulated)} foreign-arch binaries ran under "
        f"{', '.join(sorted({r['smoke']['emulator'] for r in emulated}))}",
        {"runs": runs},
    )


def _winner_ratio(doc: dict) -> tuple[float, tuple[float, float]] | None:
    """The winner's throughput relative to static glibc, measured side by side in its run,
    with its 95% bootstrap interval (winner.json written by kit.bench.run)."""
    try:
        r = doc["metrics"]["ratio_vs_glibc_system"]
        lo, hi = r["ci"]
        return float(r["ratio"]), (float(lo), float(hi))
    except (KeyError, TypeError, ValueError):
        return None


def bench_regression(current: dict, baseline: dict, margin: float) -> Outcome:
    """The winner must not be slower than the baseline's by more than `margin` (pure).

    Compared as ratios against the glibc baseline measured in the same run, not as absolute
    requests per second: absolute figures move with the machine and its load, a same-run ratio
    much less. And judged on evidence: it is a regression only when the whole 95% interval of
    the current ratio lies below the baseline ratio less the margin, so noise alone cannot fail
    the gate (and a real drop of that size cannot hide inside a narrow interval).
    """
    now, then = _winner_ratio(current), _winner_ratio(baseline)
    figures: dict = {
        "winner": current.get("allocator"),
        "baseline_winner": baseline.get("allocator"),
        "margin": margin,
    }
    if now is None:
        return Outcome(False, "winner.json has no ratio against glibc for its winner", figures)
    if then is None or then[0] <= 0:
        return Outcome(False, "the baseline has no ratio against glibc for its winner", figures)
    (ratio, (lo, hi)), (base, _) = now, then
    floor = base * (1 - margin)
    figures |= {
        "ratio_vs_glibc": ratio,
        "ci95": [lo, hi],
        "baseline_ratio_vs_glibc": base,
        "floor": floor,
        "change": round(ratio / base - 1, 4),
    }
    text = (
        f"winner {current.get('allocator')} at {ratio:.2f}x glibc [{lo:.2f}, {hi:.2f}] vs "
        f"baseline {baseline.get('allocator')} at {base:.2f}x (floor {floor:.2f}x = -{margin:.0%})"
    )
    return Outcome(hi >= floor, text, figures)


def gate_bench(ctx: Context) -> Outcome:
    opts = ctx.opts
    path = winner_path(opts)
    current = ctx.winner()
    if current is None:
        return Outcome(False, f"no bench winner at {path}: run `nox -s bench`", {})
    if not isinstance(current.get("allocator"), str):
        return Outcome(False, f"{path} names no allocator", {})
    base_path = opts.path(opts.bench_baseline)
    try:
        baseline = json.loads(base_path.read_text())
    except (OSError, ValueError) as e:
        raise NotRun(
            f"no readable bench baseline at {base_path} ({e.__class__.__name__}); "
            f"store a trusted winner.json there: cp {path} {base_path}"
        ) from None
    return bench_regression(current, baseline, opts.bench_regression_margin)


def gate_reproducible(ctx: Context) -> Outcome:
    from kit.image import package as pkg

    first = ctx.need("package", "the packaged image", ctx.package)
    unbounded = dataclasses.replace(ctx.opts, size_budget_mb=float("inf"))
    again = pkg.package(
        unbounded,
        targets=",".join(t.triple for t in ctx.targets),
        allocator=ctx.shipping_allocator().name,
        reproducible=True,
    )
    figures = {
        "index_digest": first["index_digest"],
        "again": again["index_digest"],
        "tarball_sha256": [first["tarball"]["sha256"], again["tarball"]["sha256"]],
        "files_compared": again["reproducible"].get("files"),
    }
    same = (
        first["index_digest"] == again["index_digest"]
        and first["tarball"]["sha256"] == again["tarball"]["sha256"]
    )
    detail = (
        (
            f"three packagings, one digest {first['index_digest'][:19]}..., "
            f"{figures['files_compared']} layout files byte-identical"
        )
        if same
        else (
            f"digest changed between packagings: {first['index_digest']} vs {again['index_digest']}"
        )
    )
    return Outcome(same, detail, figures)


def size_verdict(platforms: Sequence[dict], budget_mb: float) -> Outcome:
    """Every platform image's compressed size within the budget (pure)."""
    sizes = {p["platform"]: p["image_compressed_bytes"] for p in platforms}
    figures = {
        "budget_bytes": int(budget_mb * 1e6),
        "compressed_bytes": sizes,
        "uncompressed_layer_bytes": {
            p["platform"]: p.get("layer_uncompressed_bytes") for p in platforms
        },
    }
    shown = ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items())
    over = [k for k, v in sizes.items() if v > budget_mb * 1e6]
    if over:
        return Outcome(False, f"over the {budget_mb:g} MB budget: {shown}", figures)
    return Outcome(True, f"{shown} compressed, budget {budget_mb:g} MB", figures)


def gate_size(ctx: Context) -> Outcome:
    report = ctx.need("package", "the packaged image", ctx.package)
    return size_verdict(report["platforms"], ctx.opts.size_budget_mb)


def gate_container_smoke(ctx: Context) -> Outcome:
    from kit.core import engine
    from kit.image import container

    ctx.need("package", "the packaged image", ctx.package)
    if engine.ping() is None:
        raise NotRun("no Docker engine is reachable (start it, or point DOCKER_HOST at one)")
    report = container.smoke(ctx.opts)
    return Outcome(
        True,
        f"{report['platform']} healthy after {report['healthy_after_s']}s, "
        f"/api/hello ok, stopped in {report['stop_s']}s (exit {report['exit_code']})",
        report,
    )


def gate_sbom(ctx: Context) -> Outcome:
    from kit.release.sbom import write_sbom

    records = ctx.need("build", "the build matrix", ctx.records)
    ship = ctx.shipping_allocator().name
    chosen = [r for r in records if r["allocator"] == ship]
    results = [write_sbom(ctx.opts, r) for r in chosen]
    figures = {
        f"{r['triple']}/{r['name']}": s.figures() for r, s in zip(chosen, results, strict=True)
    }
    counts = ", ".join(
        f"{r['triple'].split('-')[0]} {s.crates} crates"
        for r, s in zip(chosen, results, strict=True)
    )
    return Outcome(True, f"{len(results)} CycloneDX 1.6 SBOM(s), schema-valid: {counts}", figures)


def gate_registry(ctx: Context) -> Outcome:
    from kit.image import registry

    report = ctx.need("package", "the packaged image", ctx.package)
    tag = report["tags"]["version"]
    if runner.which("skopeo") is None:
        raise NotRun("skopeo is not installed (apt-get install skopeo)")
    with registry.local_registry(ctx.opts.registry_port) as reg:
        trip = registry.push_and_pull(reg, Path(report["layout"]), ctx.opts.image_name, tag)
    figures = trip.as_dict()
    if not trip.ok:
        return Outcome(
            False,
            f"digests differ: local {trip.local_digest}, registry "
            f"{trip.pushed_digest}, pulled {trip.pulled_digest}",
            figures,
        )
    return Outcome(
        True,
        f"pushed {tag} ({trip.push_s:.1f}s), pulled by digest ({trip.pull_s:.1f}s): "
        f"{trip.local_digest[:19]}... everywhere",
        figures,
    )


GATES: tuple[Gate, ...] = (
    Gate("version", "version consistency (Cargo.toml vs tag at HEAD)", gate_version),
    Gate("clean-tree", "clean work tree", gate_clean_tree),
    Gate("lint", "lint (ruff; cargo fmt, clippy -D warnings)", gate_lint),
    Gate("cargo-test", "the crate's own cargo test", gate_cargo_test),
    Gate("build", "build matrix: static and allocator gates", gate_build),
    Gate("qemu-smoke", "foreign-arch binaries run under qemu-user", gate_qemu_smoke),
    Gate("bench", "bench winner present, no regression vs baseline", gate_bench),
    Gate("reproducible", "image reproducibility", gate_reproducible),
    Gate("size-budget", "image size budget", gate_size),
    Gate("container-smoke", "container smoke (Docker)", gate_container_smoke),
    Gate("sbom", "SBOM (CycloneDX from cargo metadata)", gate_sbom),
    Gate("registry", "push to a local registry, pull by digest", gate_registry),
)
GATE_NAMES = tuple(g.name for g in GATES)


# --- selection, running, reporting ---------------------------------------------------------------


def _parse_names(spec: str | Iterable[str] | None, what: str) -> list[str]:
    if spec is None:
        return []
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for raw in (n.strip() for n in names):
        if not raw:
            continue
        if raw not in GATE_NAMES:
            close = difflib.get_close_matches(raw, GATE_NAMES, n=1)
            maybe = f" Perhaps you meant {close[0]!r}?" if close else ""
            raise ConfigError(
                f"Unknown gate {raw!r} in {what}.{maybe}", hint="Gates: " + ", ".join(GATE_NAMES)
            )
        out.append(raw)
    return out


def select_gates(
    only: str | Iterable[str] | None = None,
    skip: str | Iterable[str] | None = None,
    *,
    skip_source: str = "--skip",
) -> list[tuple[Gate, str | None]]:
    """Every gate, in order, with None (run it) or why it is skipped (pure)."""
    chosen = _parse_names(only, "--only")
    skipped = _parse_names(skip, skip_source)
    out = []
    for g in GATES:
        if chosen and g.name not in chosen:
            out.append((g, "not in --only"))
        elif g.name in skipped:
            out.append((g, f"skipped by {skip_source}"))
        else:
            out.append((g, None))
    return out


def run_gate(gate: Gate, ctx: Context) -> GateResult:
    started = time.monotonic()

    def result(status: Status, detail: str, figures: dict | None = None) -> GateResult:
        return GateResult(
            gate.name, gate.title, status, detail, figures or {}, time.monotonic() - started
        )

    try:
        outcome = gate.run(ctx)
    except NotRun as e:
        return result(Status.NOT_RUN, str(e))
    except (ToolMissingError, EngineUnavailableError) as e:
        # the gate could not run here: not a verdict on the release, and never a pass
        hint = f" ({e.hint})" if e.hint else ""
        return result(Status.NOT_RUN, e.message + hint)
    except KitError as e:
        out = f"\n{e.output}" if isinstance(e, CommandFailedError) and e.output else ""
        return result(Status.FAILED, e.message + out)
    except Exception as e:  # a bug in a gate must not pass it, nor hide the other gates
        return result(Status.FAILED, f"internal error: {e.__class__.__name__}: {e}")
    return result(
        Status.PASSED if outcome.passed else Status.FAILED, outcome.detail, outcome.figures
    )


@dataclass(frozen=True)
class Checklist:
    results: tuple[GateResult, ...]
    started_at: str
    wall_s: float
    interrupted: bool = False
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(
            r.status in (Status.PASSED, Status.SKIPPED) for r in self.results
        )

    def by_status(self, status: Status) -> list[GateResult]:
        return [r for r in self.results if r.status == status]

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "ok": self.ok,
            "interrupted": self.interrupted,
            "started_at": self.started_at,
            "wall_s": round(self.wall_s, 2),
            "settings": self.settings,
            "counts": {str(s): len(self.by_status(s)) for s in Status},
            "gates": [r.as_dict() for r in self.results],
        }


def run_checklist(
    ctx: Context,
    selection: list[tuple[Gate, str | None]],
    *,
    on_result: Callable[[GateResult], None] | None = None,
) -> Checklist:
    """Run the selected gates in order. Ctrl-C stops the run; every gate that had not finished
    is recorded as not-run ("interrupted") and the Checklist says so."""
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    results: list[GateResult] = []
    interrupted = False
    for gate, skip_reason in selection:
        if skip_reason:
            results.append(GateResult(gate.name, gate.title, Status.SKIPPED, skip_reason))
            continue
        if interrupted:
            results.append(
                GateResult(
                    gate.name,
                    gate.title,
                    Status.NOT_RUN,
                    "interrupted (Ctrl-C) before this gate ran",
                )
            )
            continue
        try:
            with console.step(f"gate {gate.name}: {gate.title}"):
                res = run_gate(gate, ctx)
        except KeyboardInterrupt:
            interrupted = True
            res = GateResult(
                gate.name, gate.title, Status.NOT_RUN, "interrupted (Ctrl-C) while this gate ran"
            )
        results.append(res)
        if on_result:
            on_result(res)
    return Checklist(
        tuple(results), started_at, time.monotonic() - started, interrupted, settings_of(ctx)
    )


def settings_of(ctx: Context) -> dict[str, Any]:
    o = ctx.opts
    return {
        "manifest": str(o.manifest),
        "targets": [t.triple for t in ctx.targets],
        "allocators": [a.name for a in ctx.allocators],
        "image": o.image_name,
        "size_budget_mb": o.size_budget_mb,
        "bench_regression_margin": o.bench_regression_margin,
        "bench_baseline": str(o.path(o.bench_baseline)),
    }


_MARK = {
    Status.PASSED: "✅ passed",
    Status.FAILED: "❌ FAILED",
    Status.NOT_RUN: "⚠️ not run",
    Status.SKIPPED: "⏭️ skipped",
}


def first_line(text: str, width: int = 110) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def table_rows(checklist: Checklist) -> list[list[str]]:
    return [
        [r.name, str(r.status), f"{r.seconds:.1f}s", first_line(r.detail)]
        for r in checklist.results
    ]


def render_markdown(checklist: Checklist) -> str:
    """report.md (pure): verdict, the checklist table, then each gate's detail and figures."""
    verdict = "PASSED" if checklist.ok else "FAILED"
    lines = [
        f"# Release check: {verdict}",
        "",
        f"Started {checklist.started_at}, wall time {checklist.wall_s:.1f} s"
        + (" (interrupted by Ctrl-C)" if checklist.interrupted else "")
        + ".",
        "",
        "Settings: " + ", ".join(f"{k} = `{v}`" for k, v in checklist.settings.items()),
        "",
        "| gate | status | time | detail |",
        "| --- | --- | --- | --- |",
    ]
    for r in checklist.results:
        detail = first_line(r.detail, 160).replace("|", "\\|")
        lines.append(f"| {r.name} | {_MARK[r.status]} | {r.seconds:.1f} s | {detail} |")
    not_run = checklist.by_status(Status.NOT_RUN)
    if not_run:
        lines += ["", "## Not run", ""]
        lines += [f"- **{r.name}**: {first_line(r.detail, 300)}" for r in not_run]
    lines += [
        "",
        "A gate that could not run is reported as not run and fails the check; "
        "skipped gates were left out on request.",
        "",
        "## Gates",
        "",
    ]
    for r in checklist.results:
        lines += [f"### {r.name}: {r.title}", "", f"Status: {_MARK[r.status]}", ""]
        if r.detail:
            lines += ["```", r.detail.strip(), "```", ""]
        if r.figures:
            lines += [
                "```json",
                json.dumps(r.figures, indent=2, sort_keys=True, default=str),
                "```",
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def write_report(opts: Options, checklist: Checklist) -> tuple[Path, Path]:
    base = opts.path(opts.reports_dir) / "release"
    md, js = base / "report.md", base / "report.json"
    fs.write_json(js, json.loads(json.dumps(checklist.as_dict(), default=str)))
    fs.write_text(md, render_markdown(checklist))
    return md, js


_STYLE = {
    Status.PASSED: "[green]passed[/green]",
    Status.FAILED: "[bold red]FAILED[/bold red]",
    Status.NOT_RUN: "[yellow]not run[/yellow]",
    Status.SKIPPED: "[dim]skipped[/dim]",
}


def _skip_source(opts: Options) -> str:
    src = opts.sources.get("gates_skip", "default")
    return "--skip" if src == "flag" else f"gates-skip ({src})"


def check(
    opts: Options,
    *,
    only: str | None = None,
    targets: str | None = None,
    allocators: str | None = None,
) -> Checklist:
    """`invoke release-check`: select, run, report; raise when anything failed or did not run."""
    from kit.build.run import resolve_matrix
    from kit.core.errors import Interrupted, ReleaseCheckFailed

    selection = select_gates(only, opts.gates_skip, skip_source=_skip_source(opts))
    chosen_targets, chosen_allocs = resolve_matrix(opts, targets, allocators)
    ctx = Context(opts, chosen_targets, chosen_allocs)
    checklist = run_checklist(ctx, selection)
    md, js = write_report(opts, checklist)
    console.table(
        f"release check ({checklist.wall_s:.0f}s)",
        ["gate", "status", "time", "detail"],
        [
            [r.name, _STYLE[r.status], f"{r.seconds:.1f}s", first_line(r.detail, 100)]
            for r in checklist.results
        ],
    )
    console.info(f"report: {md} and {js.name}")
    if checklist.interrupted:
        raise Interrupted(
            "Interrupted: the report lists the gates that did not run: "
            + ", ".join(r.name for r in checklist.by_status(Status.NOT_RUN))
        )
    if not checklist.ok:
        failed = checklist.by_status(Status.FAILED)
        not_run = checklist.by_status(Status.NOT_RUN)
        lines = [f"  {r.name}: {first_line(r.detail, 140)}" for r in (*failed, *not_run)]
        raise ReleaseCheckFailed(
            f"Release check failed: {len(failed)} gate(s) failed, {len(not_run)} not run.\n"
            + "\n".join(lines),
            hint=f"Details and figures: {md}. A gate can be left out with --skip NAME.",
        )
    console.success(f"all {len(checklist.by_status(Status.PASSED))} gates passed")
    return checklist
