"""`invoke ci-matrix`: the generated GitHub Actions workflow is valid, complete and stable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kit.core.allocators import MIMALLOC, SYSTEM
from kit.core.options import resolve_options
from kit.core.targets import parse_targets
from kit.release.workflow import (
    HEADER,
    PINNED_ACTIONS,
    render,
    to_yaml,
    workflow,
    write_workflow,
)


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


def test_actions_are_pinned_by_commit_with_the_release_beside_them(tmp_path: Path) -> None:
    yml, _ = _render(tmp_path)
    uses = [line.split("uses: ", 1)[1] for line in yml.splitlines() if "uses: " in line]
    assert uses, "the workflow uses actions"
    for ref in uses:
        name, rest = ref.split("@", 1)
        sha, _, comment = rest.partition(" # ")
        assert len(sha) == 40 and all(c in "0123456789abcdef" for c in sha), ref
        assert comment == PINNED_ACTIONS[name][1], ref  # e.g. "v4.2.2", for a reviewer
    assert "Swatinem/rust-cache" in {u.split("@")[0] for u in uses}


def test_each_job_sets_up_for_what_it_does_without_animated_progress(tmp_path: Path) -> None:
    wf = yaml.safe_load(_render(tmp_path)[0])
    runs = {
        job: "\n".join(s.get("run", "") for s in spec["steps"]) for job, spec in wf["jobs"].items()
    }
    assert "invoke setup --for build,package" in runs["package"]
    assert "invoke setup --for package" in runs["merge"]
    assert "wrk" not in yml_text(tmp_path) and "--for test" not in yml_text(tmp_path)
    # rustup's prebuilt std where it can fetch one; without, the step goes on to setup
    assert "rustup target add ${{ matrix.triple }} ||" in runs["package"]
    assert runs["package"].index("rustup target add") < runs["package"].index("invoke setup")
    assert wf["env"]["CARGO_TERM_PROGRESS_WHEN"] == "never"
    assert wf["env"]["PIP_PROGRESS_BAR"] == "off"
    cache = next(s for s in wf["jobs"]["package"]["steps"] if "rust-cache" in s.get("uses", ""))
    assert cache["with"]["workspaces"] == ". -> target"  # the crate dir -> the kit's target dir


def yml_text(tmp_path: Path) -> str:
    return _render(tmp_path)[0]


def _project(tmp_path: Path) -> Path:
    """A project whose committed workflow is what ci-matrix generates for it."""
    opts = resolve_options(tmp_path, environ={})
    write_workflow(opts, parse_targets(list(opts.targets)), SYSTEM)
    return tmp_path


def test_the_workflow_gate_fails_on_a_stale_workflow(tmp_path: Path, monkeypatch) -> None:
    from kit.core.targets import X86_64_MUSL
    from kit.release.context import Context
    from kit.release.gates.workflow import gate_workflow
    from kit.release.model import NotRun

    root = _project(tmp_path)
    opts = resolve_options(root, environ={}, flags={"allocators": "system"})
    ctx = Context(opts, (X86_64_MUSL,), (SYSTEM,))
    ok = gate_workflow(ctx)
    assert ok.passed and "is what `invoke ci-matrix` generates" in ok.detail
    wf = root / ".github/workflows/release.yml"
    wf.write_text(wf.read_text().replace("v4.6.2", "v4.6.1"))  # edited by hand
    stale = gate_workflow(ctx)
    assert not stale.passed
    assert ".github/workflows/release.yml is stale" in stale.detail
    assert "-" in stale.detail and "v4.6.1" in stale.detail and "invoke ci-matrix" in stale.detail
    (root / ".github/matrix.json").unlink()
    wf.unlink()
    with pytest.raises(NotRun, match=r"no workflow at \.github/workflows/release\.yml"):
        gate_workflow(ctx)


def test_the_merge_job_checks_the_workflow_and_attests_keylessly(tmp_path: Path) -> None:
    wf = yaml.safe_load(_render(tmp_path)[0])
    merge = wf["jobs"]["merge"]
    assert merge["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "attestations": "write",
    }
    steps = merge["steps"]
    names = [s.get("name", s.get("uses", "")) for s in steps]
    assert names.index("The committed workflow is current") < names.index("Merge")
    attest = next(s for s in steps if "attest-build-provenance" in s.get("uses", ""))
    assert attest["with"]["subject-digest"] == "${{ steps.merge.outputs.digest }}"
    assert next(s for s in steps if s.get("id") == "merge")["run"].startswith("invoke package")
    assert "id-token" not in wf["permissions"]  # only the job that attests gets the token


def test_package_hands_its_digest_to_later_steps(tmp_path: Path) -> None:
    from kit.image.command import step_outputs

    out = tmp_path / "github_output"
    out.write_text("earlier=1\n")
    step_outputs({"digest": "sha256:ab", "image": "app"}, {"GITHUB_OUTPUT": str(out)})
    assert out.read_text() == "earlier=1\ndigest=sha256:ab\nimage=app\n"
    step_outputs({"digest": "sha256:ab"}, {})  # outside Actions: nothing to write, no error
