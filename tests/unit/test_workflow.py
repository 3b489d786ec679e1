"""`invoke ci-matrix`: the generated GitHub Actions workflow is valid, complete and stable."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from ruamel.yaml import YAML

from kit.core.allocators import MIMALLOC
from kit.core.options import resolve_options
from kit.core.targets import parse_targets
from kit.release.workflow import render, to_yaml, write_workflow


def _render(tmp_path: Path) -> tuple[str, str]:
    return render(resolve_options(tmp_path, environ={}), parse_targets("all"), MIMALLOC)


def test_output_is_deterministic(tmp_path: Path) -> None:
    assert _render(tmp_path) == _render(tmp_path)


def test_one_job_per_target_then_a_merge(tmp_path: Path) -> None:
    yml, matrix = _render(tmp_path)
    wf = YAML(typ="safe").load(yml)
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


def test_yaml_emitter_quotes_what_yaml_would_misread() -> None:
    text = to_yaml(
        {
            "on": {
                "a": "yes",
                "b": "1",
                "c": "${{ x }}",
                "d": "plain text",
                "e": False,
                "f": "two\nlines",
                "g": [],
                "h": {},
            }
        }
    )
    assert YAML(typ="safe").load(text) == {
        "on": {
            "a": "yes",
            "b": "1",
            "c": "${{ x }}",
            "d": "plain text",
            "e": False,
            "f": "two\nlines\n",
            "g": [],
            "h": {},
        }
    }


def test_merging_per_runner_layouts_gives_the_one_machine_digest(tmp_path: Path) -> None:
    """What the workflow's merge job relies on (issue 5, item 4): per-target layouts, written to
    disk as the runners upload them and merged as `invoke package --merge` does, give exactly
    the index digest of packaging both targets on one machine."""
    from kit.image import oci

    meta = oci.ImageMeta(title="app", version="0.1.0", created_epoch=1_700_000_000)
    bins = {"linux/amd64": b"\x7fELF amd64 binary", "linux/arm64/v8": b"\x7fELF arm64 binary"}
    images = {p: oci.platform_image(meta, oci.Platform.parse(p), b) for p, b in bins.items()}
    one_machine = oci.assemble(images.values(), meta.annotations(), version="0.1.0", repo="app")

    dirs = []
    for platform in ("linux/arm64/v8", "linux/amd64"):  # artifacts arrive in any order
        single = oci.assemble([images[platform]], meta.annotations(), version="0.1.0", repo="app")
        dest = tmp_path / platform.replace("/", "-")
        oci.write_layout(single, dest)
        dirs.append(dest)
    merged = oci.merge([oci.read_layout_dir(d) for d in dirs], repo="app")
    assert merged.digest == one_machine.digest
    assert merged.index_json == one_machine.index_json
