"""The release report: reports/release/report.json (a versioned record) and report.md.

Both are written atomically, also after Ctrl-C (the checklist then says which gates did not
run). An unexpected exception in a gate keeps its full stack here; the console shows one line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from kit.core import fs
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.records import Record, write_record
from kit.release.model import Checklist, GateResult, Settings, Status


class ReleaseReport(Record):
    KIND = "static-rust-kit/release-report"
    VERSION = 1
    TITLE = "release report"

    ok: bool
    interrupted: bool
    started_at: str
    wall_s: float
    settings: Settings
    counts: dict[str, int]
    gates: tuple[GateResult, ...]


def report_of(checklist: Checklist) -> ReleaseReport:
    return ReleaseReport(
        ok=checklist.ok,
        interrupted=checklist.interrupted,
        started_at=checklist.started_at,
        wall_s=round(checklist.wall_s, 2),
        settings=checklist.settings,
        counts={str(s): len(checklist.by_status(s)) for s in Status},
        gates=checklist.results,
    )


MARK = {
    Status.PASSED: "✅ passed",
    Status.FAILED: "❌ FAILED",
    Status.NOT_RUN: "⚠️ not run",
    Status.SKIPPED: "⏭️ skipped",
}


def first_line(text: str, width: int = 110) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _gate_section(r: GateResult) -> list[str]:
    lines = [f"### {r.name}: {r.title}", "", f"Status: {MARK[r.status]}", ""]
    if r.detail:
        lines += ["```", r.detail.strip(), "```", ""]
    if r.trace:
        lines += ["Traceback (a defect in the gate, not a verdict):", "", "```"]
        lines += [r.trace.rstrip(), "```", ""]
    if r.figures:
        shown = json.dumps(r.figures, indent=2, sort_keys=True)
        lines += ["```json", shown, "```", ""]
    return lines


def render_markdown(checklist: Checklist) -> str:
    """report.md (pure): verdict, the checklist table, then each gate's detail and figures."""
    verdict = "PASSED" if checklist.ok else "FAILED"
    settings = checklist.settings.model_dump(mode="json")
    lines = [
        f"# Release check: {verdict}",
        "",
        f"Started {checklist.started_at}, wall time {checklist.wall_s:.1f} s"
        + (" (interrupted by Ctrl-C)" if checklist.interrupted else "")
        + ".",
        "",
        "Settings: " + ", ".join(f"{k} = `{v}`" for k, v in settings.items()),
        "",
        "| gate | status | time | detail |",
        "| --- | --- | --- | --- |",
    ]
    for r in checklist.results:
        detail = first_line(r.detail, 160).replace("|", "\\|")
        lines.append(f"| {r.name} | {MARK[r.status]} | {r.seconds:.1f} s | {detail} |")
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
        lines += _gate_section(r)
    return "\n".join(lines).rstrip() + "\n"


def report_paths(opts: Options) -> tuple[Path, Path]:
    """(report.md, report.json) in the release directory."""
    paths = Paths.of(opts)
    return paths.release_report_md, paths.release_report_json


def write_report(
    opts: Options, checklist: Checklist, environ: Mapping[str, str] = os.environ
) -> tuple[Path, Path]:
    """report.json and report.md; in a GitHub Actions job also the job's summary page: the same
    Markdown appended to the file $GITHUB_STEP_SUMMARY names (GitHub renders it on the run)."""
    md, js = report_paths(opts)
    write_record(js, report_of(checklist))
    text = render_markdown(checklist)
    fs.write_text(md, text)
    if summary := environ.get("GITHUB_STEP_SUMMARY"):
        # appended, not replaced: earlier steps of the job may have written theirs
        with open(summary, "a", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
    return md, js
