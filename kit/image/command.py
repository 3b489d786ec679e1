"""`invoke package` and `invoke smoke` as tasks.py calls them: read what the task needs once,
run it, show the result."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from kit.build.project import read_project
from kit.core import console
from kit.core.options import Options
from kit.image.container import smoke
from kit.image.package import merge, package
from kit.image.report import SUMMARY_COLUMNS, describe_smoke, summary_rows


def package_command(
    opts: Options,
    target: str | None,
    allocator: str | None,
    reproducible: bool,
    merge_dirs: list[Path],
) -> None:
    """Package (or, with `merge_dirs`, merge per-target layouts), then a summary table."""
    if merge_dirs:
        report = merge(opts, merge_dirs)
    else:
        project = read_project(opts.manifest)  # the one read of the Cargo project in this task
        report = package(
            opts, project, targets=target, allocator=allocator, reproducible=reproducible
        )
    if report is None:  # a dry run: the task has said what it did not do
        return
    console.table("image", SUMMARY_COLUMNS, summary_rows(report))
    console.success(
        f"{report.image}:{', '.join(report.tags.tags)} {report.index_digest} "
        f"in {report.timings_s.package:.2f}s"
    )
    step_outputs(
        {"digest": report.index_digest, "image": report.image, "layout": report.layout},
        os.environ,
    )


def step_outputs(values: Mapping[str, str], environ: Mapping[str, str]) -> None:
    """In a GitHub Actions step, `name=value` lines appended to $GITHUB_OUTPUT, so later steps
    read them as `steps.<id>.outputs.<name>` (the workflow's attestation takes the digest)."""
    out = environ.get("GITHUB_OUTPUT")
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.writelines(f"{k}={v}\n" for k, v in values.items())


def smoke_command(opts: Options) -> None:
    report = smoke(opts)
    console.success(f"{report.image}: {describe_smoke(report)}")
