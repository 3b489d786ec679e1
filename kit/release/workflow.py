"""`invoke ci-matrix`: scale out through GitHub Actions, not a home-made scheduler (issue 5).

Writes .github/workflows/release.yml and .github/matrix.json. The workflow builds and packages
one target per runner (a native runner per architecture, so nothing is emulated), uploads each
per-target OCI layout as an artifact, and a last job downloads them all and merges them with
`invoke package --merge` into one multi-arch index. Per-platform manifests depend only on their
own binary, and the index lists platforms in a fixed order (kit.image.oci), so the merged index has
exactly the digest that packaging every target on one machine gives.

Generation is pure and deterministic: the same settings give the same bytes (no timestamps,
fixed key order), so the file can be committed and regenerated in review. The YAML is written
by PyYAML's safe dumper, not by hand: quoting is where a home-made emitter goes wrong (`on`,
`no`, `0x1F`, `- x` and `#c` all mean something else unquoted), and the library knows every
such case. Multi-line strings are written as literal blocks so `run:` scripts stay readable.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kit.bench.winner import shipping_allocator
from kit.core import console, fs
from kit.core.allocators import Allocator
from kit.core.options import Options
from kit.core.paths import Paths
from kit.core.targets import Target, parse_targets

WORKFLOW_PATH = Path(".github/workflows/release.yml")
MATRIX_PATH = Path(".github/matrix.json")
PYTHON_VERSION = "3.11"
# Actions pinned by commit SHA, not by tag: a tag can be moved to other code, a commit cannot
# (GitHub's security hardening guide). The release each SHA is goes beside it as a comment.
PINNED_ACTIONS: dict[str, tuple[str, str]] = {
    "actions/checkout": ("11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "actions/setup-python": ("a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
    "actions/upload-artifact": ("ea165f8d65b6e75b540449e92b4886f43607fa02", "v4.6.2"),
    "actions/download-artifact": ("d3f86a106a0bac45b974a628896c90dbdf5c8093", "v4.3.0"),
    # caches ~/.cargo and the target directory per job, keyed on Cargo.lock and the toolchain
    "Swatinem/rust-cache": ("98c8021b550208e191a6a3145459bfc9fb29c4c0", "v2.8.0"),
    # keyless SLSA provenance: signed with the job's OIDC identity through Sigstore
    "actions/attest-build-provenance": ("4d101475d8b20a2381f78447822ac1eab6504dd8", "v4.2.2"),
}


def action(name: str) -> str:
    return f"{name}@{PINNED_ACTIONS[name][0]}"


CHECKOUT = action("actions/checkout")
SETUP_PYTHON = action("actions/setup-python")
UPLOAD = action("actions/upload-artifact")
DOWNLOAD = action("actions/download-artifact")
RUST_CACHE = action("Swatinem/rust-cache")
ATTEST = action("actions/attest-build-provenance")
# What each job sets up for (`invoke setup --for`, kit/machine/setup.py): nothing for the bench
# or the kit's own tests.
PACKAGE_SETUP = "invoke setup --for build,package"
MERGE_SETUP = "invoke setup --for package"
# The prebuilt std where rustup can fetch it (GitHub's runners); where it cannot, the step goes
# on and `invoke setup` links a toolchain that builds std from source (kit/build/sysroot.py).
RUSTUP_TARGET = (
    'rustup target add ${{ matrix.triple }} || echo "::notice::no prebuilt std for '
    '${{ matrix.triple }} here; invoke setup links a toolchain that builds it"'
)
# A native runner per architecture: GitHub's hosted x64 and arm64 Ubuntu images.
RUNNERS = {"x86_64": "ubuntu-24.04", "aarch64": "ubuntu-24.04-arm"}
ARTIFACT_PREFIX = "oci-"


@dataclass(frozen=True)
class MatrixEntry:
    target: str  # the kit's alias, what `invoke build --target` takes
    triple: str
    platform: str
    runner: str
    artifact: str

    def as_dict(self) -> dict[str, str]:
        return {
            "target": self.target,
            "triple": self.triple,
            "platform": self.platform,
            "runner": self.runner,
            "artifact": self.artifact,
        }


def matrix(targets: tuple[Target, ...]) -> list[MatrixEntry]:
    return [
        MatrixEntry(
            t.arch,
            t.triple,
            t.oci_platform,
            RUNNERS.get(t.arch, RUNNERS["x86_64"]),
            f"{ARTIFACT_PREFIX}{t.triple}",
        )
        for t in targets
    ]


def _setup_steps(purposes: str) -> list[dict[str, Any]]:
    return [
        {"uses": CHECKOUT},
        {"uses": SETUP_PYTHON, "with": {"python-version": PYTHON_VERSION}},
        {"name": "Install the kit", "run": "python -m pip install -e ."},
        {"name": "Set up the machine", "run": purposes},
    ]


def _package_job(entries: list[MatrixEntry], layout_dir: str, cache: str) -> dict[str, Any]:
    """One runner per target: build, package, upload that target's OCI layout."""
    return {
        "name": "package ${{ matrix.target }}",
        "runs-on": "${{ matrix.runner }}",
        "strategy": {
            "fail-fast": False,
            "matrix": {"include": [e.as_dict() for e in entries]},
        },
        "steps": [
            # The prebuilt std first: with it, setup links no toolchain to build std from source.
            *_setup_steps(f"{RUSTUP_TARGET}\n{PACKAGE_SETUP}"),
            {"uses": RUST_CACHE, "with": {"key": "${{ matrix.triple }}", "workspaces": cache}},
            {
                "name": "Build",
                "run": "invoke build --target ${{ matrix.target }} "
                "--allocator ${{ env.ALLOCATOR }}",
            },
            {
                "name": "Package this target",
                "run": "invoke package --target "
                "${{ matrix.target }} --allocator ${{ env.ALLOCATOR }}",
            },
            {
                "name": "Upload the OCI layout",
                "uses": UPLOAD,
                "with": {
                    "name": "${{ matrix.artifact }}",
                    "path": f"{layout_dir}/",
                    "if-no-files-found": "error",
                },
            },
        ],
    }


def _merge_job(entries: list[MatrixEntry], oci_dir: str, image: str) -> dict[str, Any]:
    """Download every target's layout and merge them into one multi-arch index."""
    merge_args = " ".join(f"--merge layouts/{e.artifact}" for e in entries)
    return {
        "name": "merge into one multi-arch index",
        "needs": ["package"],
        "runs-on": RUNNERS["x86_64"],
        # what the keyless attestation needs: an OIDC token and the right to store it
        "permissions": {"contents": "read", "id-token": "write", "attestations": "write"},
        "steps": [
            *_setup_steps(MERGE_SETUP),
            {
                "name": "Download the per-target layouts",
                "uses": DOWNLOAD,
                "with": {"pattern": f"{ARTIFACT_PREFIX}*", "path": "layouts"},
            },
            {
                "name": "The committed workflow is current",
                "run": "invoke release-check --only workflow",
            },
            {"name": "Merge", "id": "merge", "run": f"invoke package {merge_args}"},
            {
                # keyless: the job's OIDC token, no key to keep; GitHub stores the attestation
                "name": "Attest the image's provenance",
                "uses": ATTEST,
                "with": {
                    "subject-name": "${{ steps.merge.outputs.image }}",
                    "subject-digest": "${{ steps.merge.outputs.digest }}",
                },
            },
            {
                "name": "Upload the multi-arch image",
                "uses": UPLOAD,
                "with": {
                    "name": f"{image}-multiarch",
                    "path": f"{oci_dir}/",
                    "if-no-files-found": "error",
                },
            },
        ],
    }


def workflow(opts: Options, targets: tuple[Target, ...], allocator: Allocator) -> dict[str, Any]:
    """The workflow as data (pure)."""
    entries = matrix(targets)
    paths = Paths.of(opts)
    # rust-cache's `workspaces`: the crate's directory -> the kit's target directory from there
    crate = opts.manifest.parent
    cache = f"{paths.relative(crate)} -> {os.path.relpath(paths.target, crate)}"
    return {
        "name": "release",
        "on": {"push": {"tags": ["v*"]}, "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        # Logs are read after the fact: no animated progress from cargo or pip (the kit's own
        # console prints one line per step under GITHUB_ACTIONS).
        "env": {
            "ALLOCATOR": allocator.name,
            "CARGO_TERM_PROGRESS_WHEN": "never",
            "PIP_PROGRESS_BAR": "off",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        },
        "jobs": {
            "package": _package_job(entries, paths.relative(paths.layout(opts.image_name)), cache),
            "merge": _merge_job(entries, paths.relative(paths.oci), opts.image_name),
        },
    }


# --- YAML ------------------------------------------------------------------------------------

# Wide enough that no command is folded onto a second line: folding is valid YAML, but a shell
# command split across lines in review reads as two commands.
WIDTH = 4096


class _Dumper(yaml.SafeDumper):
    """The safe dumper, with multi-line strings as literal blocks (`|`)."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # The emitter falls back to a quoted style by itself when a block cannot hold the string
    # exactly (trailing spaces, a leading blank line, ...), so this is only a preference.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(data: dict[str, Any]) -> str:
    """`data` as YAML that yaml.safe_load reads back as exactly `data` (pure, deterministic)."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=WIDTH,
    )


HEADER = (
    "# Generated by `invoke ci-matrix` from the [tool.kit] settings; do not edit by hand.\n"
    "# One runner per target builds and packages its OCI layout; the merge job joins them\n"
    "# into one multi-arch index with `invoke package --merge` (kit/release/workflow.py).\n"
)


def with_release_comments(text: str) -> str:
    """Each pinned `uses:` line followed by `# <release>`: a YAML comment, which PyYAML's
    dumper cannot write, added to the exact lines it emitted (a SHA appears nowhere else)."""
    for name, (sha, release) in PINNED_ACTIONS.items():
        text = text.replace(f"uses: {name}@{sha}\n", f"uses: {name}@{sha} # {release}\n")
    return text


def render(opts: Options, targets: tuple[Target, ...], allocator: Allocator) -> tuple[str, str]:
    """(release.yml, matrix.json) as text (pure, deterministic)."""
    wf = workflow(opts, targets, allocator)
    matrix_json = json.dumps({"include": [e.as_dict() for e in matrix(targets)]}, indent=2)
    return HEADER + "\n" + with_release_comments(to_yaml(wf)), matrix_json + "\n"


def write_workflow(
    opts: Options, targets: tuple[Target, ...], allocator: Allocator
) -> tuple[Path, Path]:
    yml, mjson = render(opts, targets, allocator)
    wf_path, m_path = opts.root / WORKFLOW_PATH, opts.root / MATRIX_PATH
    fs.write_text(wf_path, yml)
    fs.write_text(m_path, mjson)
    return wf_path, m_path


def generate(
    opts: Options, *, targets: str | None = None, allocator: str | None = None
) -> tuple[Path, Path]:
    """`invoke ci-matrix`: targets are --target, else [tool.kit] targets; the allocator is
    chosen by the one shipping policy from committed files (kit.bench.winner: --allocator,
    else the committed baseline's winner, else the first configured one), so that a clean
    clone generates the same bytes."""
    chosen = parse_targets(targets if targets is not None else list(opts.targets))
    choice = shipping_allocator(opts, allocator, committed=True)
    console.info(f"the workflow ships {choice.allocator.name} ({choice.source})")
    return write_workflow(opts, chosen, choice.allocator)
