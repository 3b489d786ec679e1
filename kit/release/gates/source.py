"""Gates on the source tree: versions against tags, a clean tree, lints, the crate's tests."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from kit.core import runner
from kit.core.errors import CommandFailedError
from kit.core.options import Options
from kit.release.context import Context
from kit.release.model import NotRun, Outcome


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
    project = ctx.project
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


def _lint_commands(opts: Options) -> dict[str, list[str]]:
    manifest = str(opts.manifest)
    clippy = ["cargo", "clippy", "--manifest-path", manifest, "--workspace", "--all-targets"]
    return {
        "ruff check": ["ruff", "check", "."],
        "ruff format --check": ["ruff", "format", "--check", "."],
        "cargo fmt --check": ["cargo", "fmt", "--all", "--manifest-path", manifest, "--check"],
        "cargo clippy -D warnings": [*clippy, "--locked", "--", "-D", "warnings"],
    }


def gate_lint(ctx: Context) -> Outcome:
    opts = ctx.opts
    failed: list[str] = []
    figures: dict[str, Any] = {}
    for what, argv in _lint_commands(opts).items():
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
