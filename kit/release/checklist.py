"""`invoke release-check`: the pre-release checklist, as data (issue 5).

The gates (kit.release.gates) run in order against one shared Context; each ends passed,
failed, not-run or skipped (kit.release.model says what each means). The report
(kit.release.report) is written atomically, also after Ctrl-C, and the task fails when any gate
failed or did not run.
"""

from __future__ import annotations

import datetime as dt
import difflib
import time
import traceback
from collections.abc import Iterable

from kit.build.plan import resolve_matrix
from kit.core import console, runner
from kit.core.errors import (
    CommandFailedError,
    ConfigError,
    EngineUnavailableError,
    Interrupted,
    KitError,
    ReleaseCheckFailed,
    ToolMissingError,
)
from kit.core.options import Options
from kit.release.context import Context
from kit.release.gates import GATE_NAMES, GATES
from kit.release.model import Checklist, Gate, GateResult, NotRun, Status
from kit.release.report import first_line, write_report

Selection = list[tuple[Gate, str | None]]


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
) -> Selection:
    """Every gate, in order, with None (run it) or why it is skipped (pure)."""
    chosen = _parse_names(only, "--only")
    skipped = _parse_names(skip, skip_source)
    out: Selection = []
    for g in GATES:
        if chosen and g.name not in chosen:
            out.append((g, "not in --only"))
        elif g.name in skipped:
            out.append((g, f"skipped by {skip_source}"))
        else:
            out.append((g, None))
    return out


def _result(gate: Gate, status: Status, detail: str, **more: object) -> GateResult:
    return GateResult.model_validate(
        {"name": gate.name, "title": gate.title, "status": status, "detail": detail, **more}
    )


def run_gate(gate: Gate, ctx: Context) -> GateResult:
    started = time.monotonic()

    def result(status: Status, detail: str, **more: object) -> GateResult:
        return _result(gate, status, detail, seconds=round(time.monotonic() - started, 2), **more)

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
        trace = "".join(traceback.format_exception(e))
        return result(Status.FAILED, f"internal error: {e.__class__.__name__}: {e}", trace=trace)
    status = Status.PASSED if outcome.passed else Status.FAILED
    return result(status, outcome.detail, figures=outcome.figures)


def _dry(res: GateResult) -> GateResult:
    """In a dry run commands are shown, not run: no gate has judged anything."""
    said = f" ({first_line(res.detail, 200)})" if res.detail else ""
    return res.model_copy(
        update={"status": Status.NOT_RUN, "detail": "dry run: nothing was checked" + said}
    )


def run_checklist(ctx: Context, selection: Selection) -> Checklist:
    """Run the selected gates in order. Ctrl-C stops the run; every gate that had not finished
    is recorded as not-run ("interrupted") and the Checklist says so."""
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    results: list[GateResult] = []
    interrupted = False
    for gate, skip_reason in selection:
        if skip_reason:
            res = _result(gate, Status.SKIPPED, skip_reason)
        elif interrupted:
            res = _result(gate, Status.NOT_RUN, "interrupted (Ctrl-C) before this gate ran")
        else:
            try:
                with console.step(f"gate {gate.name}: {gate.title}"):
                    res = run_gate(gate, ctx)
            except KeyboardInterrupt:
                interrupted = True
                res = _result(gate, Status.NOT_RUN, "interrupted (Ctrl-C) while this gate ran")
            if runner.is_dry():
                res = _dry(res)
        results.append(res)
    return Checklist(
        tuple(results), started_at, time.monotonic() - started, ctx.settings(), interrupted
    )


_STYLE = {
    Status.PASSED: "[green]passed[/green]",
    Status.FAILED: "[bold red]FAILED[/bold red]",
    Status.NOT_RUN: "[yellow]not run[/yellow]",
    Status.SKIPPED: "[dim]skipped[/dim]",
}


def show(checklist: Checklist) -> None:
    """The checklist as a console table: one line per gate (the report has everything)."""
    console.table(
        f"release check ({checklist.wall_s:.0f}s)",
        ["gate", "status", "time", "detail"],
        [
            [r.name, _STYLE[r.status], f"{r.seconds:.1f}s", first_line(r.detail, 100)]
            for r in checklist.results
        ],
    )


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
    selection = select_gates(only, opts.gates_skip, skip_source=_skip_source(opts))
    chosen_targets, chosen_allocs = resolve_matrix(opts, targets, allocators)
    checklist = run_checklist(Context(opts, chosen_targets, chosen_allocs), selection)
    if runner.is_dry():
        show(checklist)
        console.info("dry run: no report written")
        return checklist
    md, js = write_report(opts, checklist)
    show(checklist)
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
