"""The workflow gate: the committed CI workflow is what `invoke ci-matrix` generates today.

As cargo-dist's `dist generate --check` does: the workflow is generated from the kit and the
project's settings, so a change to either (a new target, another shipping allocator, a newer
kit) leaves the committed file behind, and a release built by a stale workflow is not the
release that was checked. The gate renders the files again in memory, with the same inputs
`invoke ci-matrix` uses, and compares them byte for byte with the ones on disk.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path

from kit.bench.winner import shipping_allocator
from kit.core.targets import parse_targets
from kit.release.context import Context
from kit.release.model import NotRun, Outcome
from kit.release.workflow import MATRIX_PATH, WORKFLOW_PATH, render

REGENERATE = "`invoke ci-matrix` writes it again"


def first_difference(expected: str, found: str) -> str:
    """The first line where the files part, as a one-line unified diff (pure)."""
    diff = [
        line
        for line in difflib.unified_diff(
            found.splitlines(), expected.splitlines(), "committed", "generated", n=0, lineterm=""
        )
        if line[:1] in "+-" and not line.startswith(("---", "+++"))
    ]
    return "; ".join(diff[:2]) if diff else "they differ only in line endings"


def stale(expected: Mapping[Path, str], found: Mapping[Path, str | None]) -> list[str]:
    """What is wrong with each committed file against its generated text (pure)."""
    problems = []
    for path, text in expected.items():
        on_disk = found.get(path)
        if on_disk is None:
            continue  # reported by the caller: a missing workflow is not-run, not stale
        if on_disk != text:
            problems.append(f"{path.as_posix()} is stale ({first_difference(text, on_disk)})")
    return problems


def gate_workflow(ctx: Context) -> Outcome:
    opts = ctx.opts
    if not (opts.root / WORKFLOW_PATH).is_file():
        raise NotRun(f"no workflow at {WORKFLOW_PATH.as_posix()}; {REGENERATE}")
    choice = shipping_allocator(opts, committed=True)
    yml, matrix_json = render(opts, parse_targets(list(opts.targets)), choice.allocator)
    expected = {WORKFLOW_PATH: yml, MATRIX_PATH: matrix_json}
    found = {p: _read(opts.root / p) for p in expected}
    problems = stale(expected, found)
    problems += [f"{p.as_posix()} is missing" for p, text in found.items() if text is None]
    figures = {
        "files": [p.as_posix() for p in expected],
        "allocator": choice.allocator.name,
        "allocator_source": choice.source,
        "targets": list(opts.targets),
    }
    if problems:
        return Outcome(False, "; ".join(problems) + f": {REGENERATE}", figures)
    return Outcome(
        True,
        f"{WORKFLOW_PATH.as_posix()} is what `invoke ci-matrix` generates "
        f"({choice.allocator.name}, {choice.source})",
        figures,
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
