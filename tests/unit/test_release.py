"""The release checklist as data: selection, gate outcomes, verdicts and the report (pure)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kit.bench.winner import Ratio, Winner, WinnerMetrics
from kit.core.allocators import SYSTEM
from kit.core.errors import ConfigError, EngineUnavailableError, GateError, ToolMissingError
from kit.core.options import resolve_options
from kit.core.records import read_record
from kit.core.targets import X86_64_MUSL
from kit.release.checklist import run_checklist, run_gate, select_gates
from kit.release.context import Context
from kit.release.gates.bench import bench_regression
from kit.release.gates.image import size_verdict
from kit.release.gates.source import version_mismatches
from kit.release.model import Checklist, Gate, GateResult, NotRun, Outcome, Settings, Status
from kit.release.report import ReleaseReport, render_markdown, write_report

GateFn = Callable[[Context], Outcome]


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return Context(resolve_options(tmp_path, environ={}), (X86_64_MUSL,), (SYSTEM,))


def test_select_only_and_skip() -> None:
    sel = {g.name: why for g, why in select_gates(only="lint,build", skip="build")}
    assert sel["lint"] is None
    assert sel["build"] == "skipped by --skip"
    assert sel["version"] == "not in --only"


@pytest.mark.parametrize(
    ("only", "skip", "close"), [("buld", None, "build"), (None, "pubilsh", "publish")]
)
def test_unknown_gate_names_suggest(only: str | None, skip: str | None, close: str) -> None:
    with pytest.raises(ConfigError, match=f"Perhaps you meant '{close}'"):
        select_gates(only=only, skip=skip)


def _gate(fn: GateFn) -> Gate:
    return Gate("g", "a gate", fn)


def _raise(exc: BaseException) -> GateFn:
    def fn(_ctx: Context) -> Outcome:
        raise exc

    return fn


@pytest.mark.parametrize(
    ("fn", "status", "detail"),
    [
        (lambda c: Outcome(True, "fine", {"x": 1}), Status.PASSED, "fine"),
        (lambda c: Outcome(False, "too big"), Status.FAILED, "too big"),
        (_raise(NotRun("no engine")), Status.NOT_RUN, "no engine"),
        (
            _raise(ToolMissingError("skopeo missing", hint="apt-get install skopeo")),
            Status.NOT_RUN,
            "skopeo missing (apt-get install skopeo)",
        ),
        (_raise(EngineUnavailableError("no Docker")), Status.NOT_RUN, "no Docker"),
        (_raise(GateError("dynamic binary")), Status.FAILED, "dynamic binary"),
    ],
)
def test_gate_outcomes(ctx: Context, fn: GateFn, status: Status, detail: str) -> None:
    res = run_gate(_gate(fn), ctx)
    assert (res.status, res.detail, res.trace) == (status, detail, None)


def _buggy_gate(ctx: Context) -> Outcome:
    raise RuntimeError("boom")


def test_a_bug_in_a_gate_fails_it_and_keeps_the_whole_stack(ctx: Context) -> None:
    res = run_gate(_gate(_buggy_gate), ctx)
    assert res.status == Status.FAILED
    assert res.detail == "internal error: RuntimeError: boom"  # the console's one line
    assert res.trace is not None
    assert res.trace.startswith("Traceback (most recent call last):")
    assert "_buggy_gate" in res.trace and res.trace.rstrip().endswith("RuntimeError: boom")
    md = render_markdown(_checklist(res))
    assert "in _buggy_gate" in md and "RuntimeError: boom" in md


def test_shared_work_failure_makes_dependents_not_run(ctx: Context) -> None:
    calls: list[int] = []

    def broken() -> int:
        calls.append(1)
        raise GateError("rust_sample is dynamically linked")

    def work() -> int:
        return ctx.once("build", broken)

    with pytest.raises(GateError):
        work()  # the gate that owns the work sees the real failure
    with pytest.raises(NotRun, match="needs the build matrix, which did not succeed: rust_sample"):
        ctx.need("the build matrix", work)
    assert len(calls) == 1  # tried once, its failure remembered


def test_ctrl_c_marks_the_rest_not_run(ctx: Context) -> None:
    gates: list[tuple[Gate, str | None]] = [
        (Gate("a", "first", lambda c: Outcome(True, "ok")), None),
        (Gate("b", "second", _raise(KeyboardInterrupt())), None),
        (Gate("c", "third", lambda c: Outcome(True, "ok")), None),
        (Gate("d", "fourth", lambda c: Outcome(True, "ok")), "skipped by --skip"),
    ]
    cl = run_checklist(ctx, gates)
    assert [r.status for r in cl.results] == [
        Status.PASSED,
        Status.NOT_RUN,
        Status.NOT_RUN,
        Status.SKIPPED,  # left out on request stays skipped, interrupted or not
    ]
    assert "while this gate ran" in cl.results[1].detail
    assert "before this gate ran" in cl.results[2].detail
    assert cl.interrupted and not cl.ok


def test_a_dry_run_judges_nothing(ctx: Context) -> None:
    from kit.core import runner

    runner.set_dry(True)
    try:
        cl = run_checklist(ctx, [(Gate("a", "first", lambda c: Outcome(True, "ok")), None)])
    finally:
        runner.set_dry(False)
    (res,) = cl.results
    assert (res.status, res.detail) == (Status.NOT_RUN, "dry run: nothing was checked (ok)")


SETTINGS = Settings(
    manifest="rust_sample/Cargo.toml",
    targets=("x86_64-unknown-linux-musl",),
    allocators=("system",),
    shipping=None,
    image="rust-sample",
    size_budget_mb=25.0,
    bench_regression_margin=0.1,
    bench_baseline="bench/baseline.json",
)


def _checklist(*results: GateResult) -> Checklist:
    return Checklist(results, "2026-01-01T00:00:00+00:00", 1.0, SETTINGS)


def _cl(*statuses: Status) -> Checklist:
    return _checklist(
        *(
            GateResult(name=f"g{i}", title="t", status=s, detail=f"detail {i}")
            for i, s in enumerate(statuses)
        )
    )


def test_verdict_skipped_is_fine_not_run_is_not() -> None:
    assert _cl(Status.PASSED, Status.SKIPPED).ok
    assert not _cl(Status.PASSED, Status.NOT_RUN).ok
    assert not _cl(Status.FAILED).ok


def test_markdown_report_lists_gates_and_what_did_not_run() -> None:
    md = render_markdown(_cl(Status.PASSED, Status.FAILED, Status.NOT_RUN))
    assert md.startswith("# Release check: FAILED")
    assert "| g1 | ❌ FAILED | 0.0 s | detail 1 |" in md
    assert "## Not run\n\n- **g2**: detail 2" in md


def test_report_is_written_as_md_and_a_record(tmp_path: Path) -> None:
    opts = resolve_options(tmp_path, environ={})
    res = run_gate(_gate(_buggy_gate), Context(opts, (X86_64_MUSL,), (SYSTEM,)))
    md, js = write_report(opts, _checklist(res))
    report = read_record(ReleaseReport, js)
    assert report.ok is False and report.counts["failed"] == 1
    assert report.gates[0].trace is not None and "RuntimeError: boom" in report.gates[0].trace
    assert md.read_text().startswith("# Release check: FAILED")
    assert not list(md.parent.glob(".*.tmp"))


def test_in_github_actions_the_report_is_appended_to_the_job_summary(tmp_path: Path) -> None:
    opts = resolve_options(tmp_path, environ={})
    res = run_gate(_gate(_buggy_gate), Context(opts, (X86_64_MUSL,), (SYSTEM,)))
    summary = tmp_path / "step_summary.md"
    summary.write_text("## an earlier step's summary\n")
    md, _ = write_report(opts, _checklist(res), {"GITHUB_STEP_SUMMARY": str(summary)})
    assert summary.read_text() == "## an earlier step's summary\n" + md.read_text()


def test_figures_json_cannot_hold_are_kept_as_text() -> None:
    res = GateResult(name="g", title="t", status=Status.PASSED, detail="", figures={"p": Path("x")})
    assert res.figures == {"p": "x"}


@pytest.mark.parametrize(
    ("tags", "problems"),
    [
        ([], []),
        (["v0.1.0"], []),
        (["0.1.0", "nightly"], []),
        (["v0.2.0"], ["tag v0.2.0 says 0.2.0, app's Cargo.toml says 0.1.0"]),
        (["lib-v0.3.0"], []),
        (["lib-v0.1.0"], ["tag lib-v0.1.0 says 0.1.0, lib's Cargo.toml says 0.3.0"]),
        (["other@1.0.0"], ["tag other@1.0.0 names package 'other', which is not in the project"]),
    ],
)
def test_version_tags(tags: list[str], problems: list[str]) -> None:
    assert version_mismatches({"app": "0.1.0", "lib": "0.3.0"}, "app", tags) == problems


def _winner(alloc: str, ratio: tuple[float, float, float] | None) -> Winner:
    vs_glibc = None if ratio is None else Ratio(ratio=ratio[0], ci=ratio[1:], p_value=0.01)
    return Winner(
        allocator=alloc,
        triple="x86_64-unknown-linux-musl",
        variant=f"x86_64-unknown-linux-musl/{alloc}",
        reason="fastest",
        rule="significant",
        outright=True,
        mode="full",
        run="reports/bench/20260101T000000Z",
        decided_at=None,
        metrics=WinnerMetrics(
            scenario="hello",
            throughput_rps=1000.0,
            throughput_ci95=(990.0, 1010.0),
            binary_size=1_000_000,
            ratio_vs_glibc_system=vs_glibc,
            repetitions=5,
        ),
    )


@pytest.mark.parametrize(
    ("now", "passed"),
    [
        ((2.0, 1.8, 2.2), True),  # same as the baseline
        ((1.5, 1.2, 1.9), True),  # lower, but the interval reaches the floor: not evidence
        ((1.5, 1.3, 1.7), False),  # the whole interval is below 2.0 * 0.9 = 1.8
    ],
)
def test_bench_regression_is_judged_on_the_interval(
    now: tuple[float, float, float], passed: bool
) -> None:
    out = bench_regression(_winner("mimalloc", now), _winner("jemalloc", (2.0, 1.9, 2.1)), 0.10)
    assert out.passed is passed
    assert out.figures["baseline_winner"] == "jemalloc"
    assert out.figures["floor"] == pytest.approx(1.8)


def test_bench_without_figures_fails() -> None:
    baseline = _winner("jemalloc", (1.0, 0.9, 1.1))
    assert not bench_regression(_winner("system", None), baseline, 0.1).passed


def test_size_budget() -> None:
    sizes = {"linux/amd64": 900_000, "linux/arm64/v8": 1_100_000}
    layers = {"linux/amd64": 2_000_000, "linux/arm64/v8": None}
    assert size_verdict(sizes, layers, 2.0).passed
    out = size_verdict(sizes, layers, 1.0)
    assert not out.passed and "over the 1 MB budget" in out.detail
    assert not size_verdict(sizes, layers, 1e-6).passed  # the 1-byte budget
