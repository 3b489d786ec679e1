"""The release workflow's rehearsal reads a workflow as a runner does (pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.core.allocators import MIMALLOC
from kit.core.errors import CommandFailedError, ConfigError
from kit.core.options import resolve_options
from kit.core.targets import parse_targets
from kit.release.rehearsal import (
    ACTIONS,
    Context,
    artifact_layout,
    jobs_of,
    matrix_entries,
    parse_file_command,
)
from kit.release.workflow import workflow


def _generated(tmp_path: Path) -> dict:
    return workflow(resolve_options(tmp_path, environ={}), parse_targets("all"), MIMALLOC)


def test_the_generated_workflow_is_one_job_per_target_then_the_merge(tmp_path: Path) -> None:
    jobs = jobs_of(_generated(tmp_path))
    assert [j.name for j in jobs] == [
        "package x86_64",
        "package aarch64",
        "merge into one multi-arch index",
    ]
    assert jobs[0].matrix["triple"] == "x86_64-unknown-linux-musl"
    assert jobs[0].env["ALLOCATOR"] == "mimalloc"
    assert jobs[2].needs == ("package",)


def test_every_action_the_generated_workflow_uses_has_a_model(tmp_path: Path) -> None:
    used = {s.uses for j in jobs_of(_generated(tmp_path)) for s in j.steps if s.uses}
    assert used and used <= set(ACTIONS)


def test_expressions_read_matrix_env_and_step_outputs() -> None:
    ctx = Context({"triple": "x86_64-unknown-linux-musl"}, {"ALLOCATOR": "jemalloc"})
    ctx.outputs["merge"] = {"digest": "sha256:ab"}
    text = "build ${{ matrix.triple }} ${{env.ALLOCATOR}} ${{ steps.merge.outputs.digest }}"
    assert ctx.substitute(text) == "build x86_64-unknown-linux-musl jemalloc sha256:ab"
    assert ctx.substitute("${{ steps.other.outputs.x }}") == ""  # as GitHub: empty, not an error


def test_an_expression_it_cannot_evaluate_is_refused() -> None:
    with pytest.raises(ConfigError, match="hashFiles"):
        Context({}, {}).substitute("${{ hashFiles('Cargo.lock') }}")


def test_matrix_include_entries_or_the_product_of_axes() -> None:
    assert matrix_entries("j", None) == [{}]
    include = {"matrix": {"include": [{"a": 1}, {"a": 2}]}}
    assert matrix_entries("j", include) == [{"a": "1"}, {"a": "2"}]
    axes = {"matrix": {"os": ["x", "y"], "py": ["3"]}}
    assert matrix_entries("j", axes) == [{"os": "x", "py": "3"}, {"os": "y", "py": "3"}]
    with pytest.raises(ConfigError, match="not both"):
        matrix_entries("j", {"matrix": {"os": ["x"], "include": [{"a": 1}]}})


def test_jobs_run_after_the_jobs_they_need() -> None:
    wf = {
        "jobs": {
            "last": {"needs": ["middle"], "steps": [{"run": "true"}]},
            "middle": {"needs": "first", "steps": [{"run": "true"}]},
            "first": {"steps": [{"run": "true"}]},
        }
    }
    assert [j.id for j in jobs_of(wf)] == ["first", "middle", "last"]
    wf["jobs"]["first"]["needs"] = ["last"]
    with pytest.raises(ConfigError, match="cycle"):
        jobs_of(wf)


@pytest.mark.parametrize(
    ("step", "refused"),
    [({"run": "x", "if": "always()"}, "`if`"), ({"run": "x", "shell": "pwsh"}, "bash")],
)
def test_what_it_does_not_model_is_refused_not_skipped(step: dict, refused: str) -> None:
    with pytest.raises(ConfigError, match=refused):
        jobs_of({"jobs": {"j": {"steps": [step]}}})


def test_defaults_that_would_change_every_step_are_refused() -> None:
    steps = [{"run": "make"}]
    with pytest.raises(ConfigError, match=r"The workflow: .*`defaults`"):
        jobs_of({"defaults": {"run": {"shell": "sh"}}, "jobs": {"j": {"steps": steps}}})
    with pytest.raises(ConfigError, match=r"Job 'j': .*`defaults`"):
        jobs_of({"jobs": {"j": {"defaults": {"run": {"working-directory": "x"}}, "steps": steps}}})


def test_file_commands_as_github_reads_them() -> None:
    text = "image=rust-sample\ndigest=sha256:ab=cd\n\nnotes<<EOF\nline 1\nline 2\nEOF\n"
    assert parse_file_command(text) == {
        "image": "rust-sample",
        "digest": "sha256:ab=cd",
        "notes": "line 1\nline 2",
    }
    with pytest.raises(CommandFailedError, match="closing"):
        parse_file_command("notes<<EOF\nnever closed\n")
    with pytest.raises(CommandFailedError, match="refuse"):
        parse_file_command("no equals sign\n")


def test_download_lays_artifacts_out_as_the_action_does() -> None:
    up = ["oci-aarch64", "oci-x86_64", "report"]
    assert artifact_layout("oci-*", None, up) == {
        "oci-aarch64": "oci-aarch64",
        "oci-x86_64": "oci-x86_64",
    }
    assert artifact_layout(None, "report", up) == {"report": ""}
    with pytest.raises(CommandFailedError, match="no artifact matches"):
        artifact_layout("wheels-*", None, up)
    with pytest.raises(CommandFailedError, match="no artifact named"):
        artifact_layout(None, "missing", up)
