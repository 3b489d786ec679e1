"""The release workflow, rehearsed as hosted runners would run it (issue 12).

Each job runs in a fresh container of a Debian root file system made from Debian's packages
and imported into the engine (nothing pulled), as an unprivileged user with passwordless
sudo; every `run:` step runs in order, and checkout and artifacts are done by copying
(kit/release/rehearsal.py). What the runners make must be byte for byte what packaging on
this machine makes (the `packaged` fixture).

`nox -s matrix` (SRK_FULL_MATRIX=1) rehearses the committed workflow: both targets' jobs and
the merge, whose index digest must be the one-machine index digest. CI rehearses the same
workflow generated for x86_64 alone (`invoke ci-matrix --target x86_64` would write it): one
package job and the merge, about a third of the time; there the merged image's x86_64
manifest must be the one-machine image's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from kit.core.allocators import MIMALLOC
from kit.core.options import resolve_options
from kit.core.targets import parse_targets
from kit.image.report import PackageReport
from kit.release.rehearsal import jobs_of, rehearse
from kit.release.workflow import WORKFLOW_PATH, to_yaml, workflow

from .conftest import ROOT

FULL = bool(os.environ.get("SRK_FULL_MATRIX"))
MERGE_JOB = "merge into one multi-arch index"


def _platform_manifests(layout: Path) -> dict[str, str]:
    """platform -> manifest digest, from an OCI layout's image index."""
    top = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    index = json.loads((layout / "blobs" / "sha256" / top.split(":", 1)[1]).read_text())
    out = {}
    for m in index["manifests"]:
        p = m["platform"]
        out["/".join(filter(None, (p["os"], p["architecture"], p.get("variant"))))] = m["digest"]
    return out


def test_every_run_step_passes_on_runners_and_the_image_is_the_one_machine_image(
    packaged: PackageReport, tmp_path: Path
) -> None:
    opts = resolve_options(ROOT, flags={"reports_dir": str(tmp_path / "reports")})
    if FULL:
        path = ROOT / WORKFLOW_PATH
    else:
        path = tmp_path / "release.yml"
        path.write_text(to_yaml(workflow(opts, parse_targets("x86_64"), MIMALLOC)))
    outcome = rehearse(opts, workflow=path)

    jobs = jobs_of(yaml.safe_load(path.read_text()))
    assert outcome.jobs == tuple(j.name for j in jobs) and jobs[-1].name == MERGE_JOB
    ran = [(s.job, s.step) for s in outcome.steps if s.how == "run"]
    assert ran == [(j.name, s.name) for j in jobs for s in j.steps if s.run is not None]

    # the steps ran as the runner's user: apt-get went through sudo
    logs = tmp_path / "reports" / "rehearsal"
    for job in jobs[:-1]:
        log = (logs / f"{job.name.replace(' ', '-')}.log").read_text()
        assert "+ sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install" in log

    assert json.loads((logs / "rehearsal.json").read_text())["jobs"] == list(outcome.jobs)

    merged = outcome.outputs[MERGE_JOB]["merge"]
    on_runners = _platform_manifests(logs / "artifacts" / "rust-sample-multiarch" / "rust-sample")
    one_machine = {p.platform: p.manifest_digest for p in packaged.platforms}
    # the same sources and toolchain give the same bytes: which toolchain each side built with
    chose = [
        line
        for job in jobs[:-1]
        for line in (logs / f"{job.name.replace(' ', '-')}.log").read_text().splitlines()
        if ": backend " in line and ", toolchain " in line
    ]
    assert on_runners == {p: one_machine[p] for p in on_runners}, chose
    assert len(on_runners) == len(jobs) - 1
    if FULL:
        assert merged["digest"] == packaged.index_digest
