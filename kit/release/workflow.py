"""`invoke ci-matrix`: scale out through GitHub Actions, not a home-made scheduler (issue 5).

Writes .github/workflows/release.yml and .github/matrix.json. The workflow builds and packages
one target per runner (a native runner per architecture, so nothing is emulated), uploads each
per-target OCI layout as an artifact, and a last job downloads them all and merges them with
`invoke package --merge` into one multi-arch index. Per-platform manifests depend only on their
own binary, and the index lists platforms in a fixed order (kit.image.oci), so the merged index has
exactly the digest that packaging every target on one machine gives.

Generation is pure and deterministic: the same settings give the same bytes (no timestamps,
fixed key order), so the file can be committed and regenerated in review. The YAML is written
by a small emitter below rather than a YAML library: it only has to print dicts, lists and
strings, and doing it here keeps block scalars readable and the output byte-stable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.core import fs
from kit.core.allocators import Allocator
from kit.core.options import Options
from kit.core.targets import Target

WORKFLOW_PATH = Path(".github/workflows/release.yml")
MATRIX_PATH = Path(".github/matrix.json")
PYTHON_VERSION = "3.11"
# Actions pinned to their major version tags, as GitHub's own starter workflows do.
CHECKOUT = "actions/checkout@v4"
SETUP_PYTHON = "actions/setup-python@v5"
UPLOAD = "actions/upload-artifact@v4"
DOWNLOAD = "actions/download-artifact@v4"
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


def _setup_steps() -> list[dict[str, Any]]:
    return [
        {"uses": CHECKOUT},
        {"uses": SETUP_PYTHON, "with": {"python-version": PYTHON_VERSION}},
        {"name": "Install the kit", "run": 'python -m pip install -e ".[test]"'},
    ]


def workflow(opts: Options, targets: tuple[Target, ...], allocator: Allocator) -> dict[str, Any]:
    """The workflow as data (pure)."""
    entries = matrix(targets)
    layout_dir = f"{opts.dist_dir.as_posix()}/oci/{opts.image_name}"
    merge_args = " ".join(f"--merge layouts/{e.artifact}" for e in entries)
    return {
        "name": "release",
        "on": {"push": {"tags": ["v*"]}, "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        "env": {"ALLOCATOR": allocator.name, "FORCE_COLOR": "1"},
        "jobs": {
            "package": {
                "name": "package ${{ matrix.target }}",
                "runs-on": "${{ matrix.runner }}",
                "strategy": {
                    "fail-fast": False,
                    "matrix": {"include": [e.as_dict() for e in entries]},
                },
                "steps": [
                    *_setup_steps(),
                    {"name": "Rust target", "run": "rustup target add ${{ matrix.triple }}"},
                    {"name": "Set up the toolchain", "run": "invoke setup"},
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
            },
            "merge": {
                "name": "merge into one multi-arch index",
                "needs": ["package"],
                "runs-on": RUNNERS["x86_64"],
                "steps": [
                    *_setup_steps(),
                    {
                        "name": "Download the per-target layouts",
                        "uses": DOWNLOAD,
                        "with": {"pattern": f"{ARTIFACT_PREFIX}*", "path": "layouts"},
                    },
                    {"name": "Merge", "run": f"invoke package {merge_args}"},
                    {
                        "name": "Upload the multi-arch image",
                        "uses": UPLOAD,
                        "with": {
                            "name": f"{opts.image_name}-multiarch",
                            "path": f"{opts.dist_dir.as_posix()}/oci/",
                            "if-no-files-found": "error",
                        },
                    },
                ],
            },
        },
    }


# --- a small, deterministic YAML emitter ------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z0-9_./~-][A-Za-z0-9_./~ -]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~", ""}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if (
        _PLAIN.match(text)
        and text.lower() not in _RESERVED
        and not text.endswith(" ")
        and not re.fullmatch(r"[-+]?[0-9._]+(e[-+]?\d+)?", text)
    ):
        return text
    return json.dumps(text)  # a JSON string is a valid double-quoted YAML scalar


def _emit(value: Any, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for k, v in value.items():
            key = _scalar(k)
            if isinstance(v, dict | list) and v:
                out.append(f"{pad}{key}:")
                _emit(v, indent + 2, out)
            elif isinstance(v, str) and "\n" in v:
                out.append(f"{pad}{key}: |")
                out += [f"{pad}  {line}" if line else "" for line in v.rstrip("\n").split("\n")]
            else:
                out.append(f"{pad}{key}: {'{}' if v == {} else '[]' if v == [] else _scalar(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                sub: list[str] = []
                _emit(item, indent + 2, sub)
                out.append(f"{pad}- {sub[0].lstrip()}")
                out += sub[1:]
            else:
                out.append(f"{pad}- {_scalar(item)}")
    else:
        out.append(f"{pad}{_scalar(value)}")


def to_yaml(data: dict[str, Any]) -> str:
    out: list[str] = []
    _emit(data, 0, out)
    return "\n".join(out) + "\n"


HEADER = (
    "# Generated by `invoke ci-matrix` from the [tool.kit] settings; do not edit by hand.\n"
    "# One runner per target builds and packages its OCI layout; the merge job joins them\n"
    "# into one multi-arch index with `invoke package --merge` (kit/workflow.py).\n"
)


def render(opts: Options, targets: tuple[Target, ...], allocator: Allocator) -> tuple[str, str]:
    """(release.yml, matrix.json) as text (pure, deterministic)."""
    wf = workflow(opts, targets, allocator)
    matrix_json = json.dumps({"include": [e.as_dict() for e in matrix(targets)]}, indent=2)
    return HEADER + "\n" + to_yaml(wf), matrix_json + "\n"


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
    """`invoke ci-matrix`: the allocator is --allocator, else the bench winner, else the first
    configured one; targets are --target, else [tool.kit] targets."""
    from kit.build.run import resolve_matrix
    from kit.core.allocators import parse_allocator
    from kit.release.checklist import winner_path

    chosen_targets, allocs = resolve_matrix(opts, targets, None)
    if allocator:
        alloc = parse_allocator(allocator)
    else:
        try:
            alloc = parse_allocator(json.loads(winner_path(opts).read_text())["allocator"])
        except (OSError, ValueError, KeyError, TypeError):
            alloc = allocs[0]
    return write_workflow(opts, chosen_targets, alloc)
