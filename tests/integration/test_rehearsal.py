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
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from kit.core.allocators import MIMALLOC
from kit.core.options import resolve_options
from kit.core.targets import parse_targets
from kit.image.report import PackageReport
from kit.release.rehearsal import Job, Outcome, jobs_of, rehearse
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


@dataclass(frozen=True)
class Rehearsed:
    jobs: list[Job]
    outcome: Outcome
    logs: Path

    def merged_layout(self) -> Path:
        return self.logs / "artifacts" / "rust-sample-multiarch" / "rust-sample"


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory: pytest.TempPathFactory) -> Rehearsed:
    tmp = tmp_path_factory.mktemp("rehearsal")
    opts = resolve_options(ROOT, flags={"reports_dir": str(tmp / "reports")})
    if FULL:
        path = ROOT / WORKFLOW_PATH
    else:
        path = tmp / "release.yml"
        path.write_text(to_yaml(workflow(opts, parse_targets("x86_64"), MIMALLOC)))
    outcome = rehearse(opts, workflow=path)
    jobs = jobs_of(yaml.safe_load(path.read_text()))
    return Rehearsed(jobs, outcome, tmp / "reports" / "rehearsal")


def test_every_run_step_passes_on_runners(rehearsed: Rehearsed) -> None:
    jobs, outcome, logs = rehearsed.jobs, rehearsed.outcome, rehearsed.logs
    assert outcome.jobs == tuple(j.name for j in jobs) and jobs[-1].name == MERGE_JOB
    ran = [(s.job, s.step) for s in outcome.steps if s.how == "run"]
    assert ran == [(j.name, s.name) for j in jobs for s in j.steps if s.run is not None]
    # the steps ran as the runner's user: apt-get went through sudo
    for job in jobs[:-1]:
        log = (logs / f"{job.name.replace(' ', '-')}.log").read_text()
        assert "+ sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install" in log
    assert json.loads((logs / "rehearsal.json").read_text())["jobs"] == list(outcome.jobs)
    # the merge step handed on the digest of the index it wrote, one platform per package job
    merged = outcome.outputs[MERGE_JOB]["merge"]
    index = json.loads((rehearsed.merged_layout() / "index.json").read_text())
    assert index["manifests"][0]["digest"] == merged["digest"]
    platforms = {j.matrix["platform"] for j in jobs[:-1]}
    assert set(_platform_manifests(rehearsed.merged_layout())) == platforms


def test_the_runners_image_is_the_one_machine_image(
    rehearsed: Rehearsed, packaged: PackageReport
) -> None:
    on_runners = _platform_manifests(rehearsed.merged_layout())
    one_machine = {p.platform: p.manifest_digest for p in packaged.platforms}
    assert on_runners == {p: one_machine[p] for p in on_runners}
    if FULL:
        merged = rehearsed.outcome.outputs[MERGE_JOB]["merge"]
        assert merged["digest"] == packaged.index_digest
