"""`invoke ci-matrix`: the generated GitHub Actions workflow is valid, complete and stable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kit.core.allocators import MIMALLOC
from kit.core.options import resolve_options
from kit.core.targets import parse_targets
from kit.release.workflow import HEADER, render, to_yaml, workflow, write_workflow


def _render(tmp_path: Path) -> tuple[str, str]:
    return render(resolve_options(tmp_path, environ={}), parse_targets("all"), MIMALLOC)


def test_output_is_deterministic(tmp_path: Path) -> None:
    assert _render(tmp_path) == _render(tmp_path)


def test_one_job_per_target_then_a_merge(tmp_path: Path) -> None:
    yml, matrix = _render(tmp_path)
    wf = yaml.safe_load(yml)
    include = wf["jobs"]["package"]["strategy"]["matrix"]["include"]
    assert [e["triple"] for e in include] == [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
    ]
    assert [e["runner"] for e in include] == ["ubuntu-24.04", "ubuntu-24.04-arm"]
    assert json.loads(matrix) == {"include": include}
    steps = wf["jobs"]["package"]["steps"]
    assert any(
        s.get("run", "").startswith("invoke package --target ${{ matrix.target }}") for s in steps
    )
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in steps)
    merge = wf["jobs"]["merge"]
    assert merge["needs"] == ["package"]
    runs = [s.get("run", "") for s in merge["steps"]]
    assert (
        "invoke package --merge layouts/oci-x86_64-unknown-linux-musl "
        "--merge layouts/oci-aarch64-unknown-linux-musl"
    ) in runs
    assert wf["env"]["ALLOCATOR"] == "mimalloc"


def test_validates_against_the_github_workflows_schema(tmp_path: Path) -> None:
    # check-jsonschema's vendored schema, run in-process through its click CLI (no network).
    from check_jsonschema import main

    wf_path, _ = write_workflow(
        resolve_options(tmp_path, environ={}), parse_targets("all"), MIMALLOC
    )
    result = CliRunner().invoke(main, ["--builtin-schema", "vendor.github-workflows", str(wf_path)])
    assert result.exit_code == 0, result.output
    assert wf_path == tmp_path / ".github/workflows/release.yml"


TRICKY = [
    "-",
    "- x",
    "0x1F",
    "0o17",
    "1_000",
    ".inf",
    "-.inf",
    ".nan",
    "1e3",
    "3.11",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "True",
    "null",
    "Null",
    "~",
    "",
    " ",
    "@x",
    "`x`",
    "a: b",
    "#c",
    "a #c",
    "!tag",
    "&anchor",
    "*alias",
    "%directive",
    "{x}",
    "[x]",
    "'quoted'",
    '"quoted"',
    "|",
    ">",
    "? x",
    "trailing space ",
    " leading space",
    "${{ matrix.target }}",
    "2001-12-14",
    "12:30:45",
    "two\nlines",
    "ends with a newline\n",
    "\nstarts with a newline",
    "line one\n  indented\n\nafter a blank line\n",
    "trailing spaces  \non a line",
    "tab\tinside",
    "unicode: é ✓",
]


@pytest.mark.parametrize("text", TRICKY)
def test_every_string_reads_back_as_itself(text: str) -> None:
    for data in ({"key": text}, {text or "empty": [text]}, {"k": {text: text}}):
        assert yaml.safe_load(to_yaml(data)) == data


def test_the_whole_workflow_round_trips(tmp_path: Path) -> None:
    opts = resolve_options(tmp_path, environ={})
    data = workflow(opts, parse_targets("all"), MIMALLOC)
    yml, _ = render(opts, parse_targets("all"), MIMALLOC)
    assert yml.startswith(HEADER)
    assert yaml.safe_load(yml) == data


def test_merging_per_runner_layouts_gives_the_one_machine_digest(tmp_path: Path) -> None:
    """What the workflow's merge job relies on (issue 5, item 4): per-target layouts, written to
    disk as the runners upload them and merged as `invoke package --merge` does, give exactly
    the index digest of packaging both targets on one machine."""
    from kit.image import layout, oci

    meta = oci.ImageMeta(title="app", version="0.1.0", created_epoch=1_700_000_000)
    bins = {"linux/amd64": b"\x7fELF amd64 binary", "linux/arm64/v8": b"\x7fELF arm64 binary"}
    images = {p: oci.platform_image(meta, oci.Platform.parse(p), b) for p, b in bins.items()}
    one_machine = oci.assemble(images.values(), meta.annotations(), version="0.1.0", repo="app")

    dirs = []
    for platform in ("linux/arm64/v8", "linux/amd64"):  # artifacts arrive in any order
        single = oci.assemble([images[platform]], meta.annotations(), version="0.1.0", repo="app")
        dest = tmp_path / platform.replace("/", "-")
        layout.write_layout(single, dest)
        dirs.append(dest)
    merged = oci.merge([layout.read_layout_dir(d) for d in dirs], repo="app")
    assert merged.digest == one_machine.digest
    assert merged.index_json == one_machine.index_json
