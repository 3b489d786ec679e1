"""The release checklist as data: selection, gate outcomes, verdicts and the report (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.core.errors import ConfigError, EngineUnavailableError, GateError, ToolMissingError
from kit.core.options import resolve_options
from kit.core.targets import X86_64_MUSL
from kit.release import checklist as release
from kit.release.checklist import (
    GATE_NAMES,
    Checklist,
    Context,
    Gate,
    GateResult,
    NotRun,
    Outcome,
    Status,
    bench_regression,
    render_markdown,
    run_checklist,
    run_gate,
    select_gates,
    size_verdict,
    version_mismatches,
)


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    from kit.core.allocators import SYSTEM

    return Context(resolve_options(tmp_path, environ={}), (X86_64_MUSL,), (SYSTEM,))


def test_every_gate_the_issue_lists_is_there() -> None:
    assert GATE_NAMES == (
        "version",
        "clean-tree",
        "lint",
        "cargo-test",
        "build",
        "qemu-smoke",
        "bench",
        "reproducible",
        "size-budget",
        "container-smoke",
        "sbom",
        "registry",
    )


def test_select_only_and_skip() -> None:
    sel = {g.name: why for g, why in select_gates(only="lint,build", skip="build")}
    assert sel["lint"] is None
    assert sel["build"] == "skipped by --skip"
    assert sel["version"] == "not in --only"


@pytest.mark.parametrize(
    ("only", "skip", "close"), [("buld", None, "build"), (None, "regsitry", "registry")]
)
def test_unknown_gate_names_suggest(only: str | None, skip: str | None, close: str) -> None:
    with pytest.raises(ConfigError, match=f"Perhaps you meant '{close}'"):
        select_gates(only=only, skip=skip)


def _gate(fn) -> Gate:
    return Gate("g", "a gate", fn)


def _raise(exc: BaseException):
    def fn(_ctx):
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
        (_raise(ValueError("bug")), Status.FAILED, "internal error: ValueError: bug"),
    ],
)
def test_gate_outcomes(ctx: Context, fn, status: Status, detail: str) -> None:
    res = run_gate(_gate(fn), ctx)
    assert (res.status, res.detail) == (status, detail)


def test_shared_work_failure_makes_dependents_not_run(ctx: Context) -> None:
    def broken():
        raise GateError("rust_sample is dynamically linked")

    with pytest.raises(GateError):
        ctx._once("build", broken)  # the gate that owns the work sees the real failure
    with pytest.raises(NotRun, match="needs the build matrix, which did not succeed: rust_sample"):
        ctx.need("build", "the build matrix", broken)


def test_ctrl_c_marks_the_rest_not_run(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    gates = [
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


def _cl(*statuses: Status) -> Checklist:
    results = tuple(GateResult(f"g{i}", "t", s, f"detail {i}") for i, s in enumerate(statuses))
    return Checklist(results, "2026-01-01T00:00:00+00:00", 1.0)


def test_verdict_skipped_is_fine_not_run_is_not() -> None:
    assert _cl(Status.PASSED, Status.SKIPPED).ok
    assert not _cl(Status.PASSED, Status.NOT_RUN).ok
    assert not _cl(Status.FAILED).ok


def test_markdown_report_lists_gates_and_what_did_not_run() -> None:
    md = render_markdown(_cl(Status.PASSED, Status.FAILED, Status.NOT_RUN))
    assert md.startswith("# Release check: FAILED")
    assert "| g1 | ❌ FAILED | 0.0 s | detail 1 |" in md
    assert "## Not run\n\n- **g2**: detail 2" in md


def test_report_is_written_as_md_and_json(tmp_path: Path) -> None:
    opts = resolve_options(tmp_path, environ={})
    md, js = release.write_report(opts, _cl(Status.PASSED))
    data = json.loads(js.read_text())
    assert data["ok"] is True and data["gates"][0]["status"] == "passed"
    assert md.read_text().startswith("# Release check: PASSED")
    assert not list(md.parent.glob(".*.tmp"))


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


def _winner(alloc: str, ratio: float, lo: float, hi: float) -> dict:
    return {
        "allocator": alloc,
        "metrics": {"ratio_vs_glibc_system": {"ratio": ratio, "ci": [lo, hi], "p_value": 0.01}},
    }


@pytest.mark.parametrize(
    ("now", "passed"),
    [
        ((2.0, 1.8, 2.2), True),  # same as the baseline
        ((1.5, 1.2, 1.9), True),  # lower, but the interval reaches the floor: not evidence
        ((1.5, 1.3, 1.7), False),  # the whole interval is below 2.0 * 0.9 = 1.8
    ],
)
def test_bench_regression_is_judged_on_the_interval(now, passed) -> None:
    out = bench_regression(_winner("mimalloc", *now), _winner("jemalloc", 2.0, 1.9, 2.1), 0.10)
    assert out.passed is passed
    assert out.figures["baseline_winner"] == "jemalloc"
    assert out.figures["floor"] == pytest.approx(1.8)


def test_bench_without_figures_fails() -> None:
    assert not bench_regression({"allocator": "x"}, _winner("jemalloc", 1.0, 0.9, 1.1), 0.1).passed


def test_size_budget() -> None:
    platforms = [
        {"platform": "linux/amd64", "image_compressed_bytes": 900_000},
        {"platform": "linux/arm64/v8", "image_compressed_bytes": 1_100_000},
    ]
    assert size_verdict(platforms, 2.0).passed
    out = size_verdict(platforms, 1.0)
    assert not out.passed and "over the 1 MB budget" in out.detail
    assert not size_verdict(platforms, 1e-6).passed  # the 1-byte budget
