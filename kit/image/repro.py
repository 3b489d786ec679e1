"""`invoke package --check-reproducible`: package again from scratch in a fresh process.

Calling the same pure functions twice in one process proves little: both calls would share
every cached value, import-time state and input read. So after the outputs are written, a
child process (`python -m kit.image.repro REQUEST`) re-reads the options, the Cargo project,
git, the CA bundle and the binaries, and packages them into a temporary dist/oci. It never
builds: a binary missing from dist/ fails it. Then every file of the two layouts and the two
tarballs is compared by digest, and any difference is a PackageError listing the files.

The request crosses the process boundary as a record (kit.core.records), like every other file.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kit.bench.winner import ShippingChoice
from kit.build.project import read_project
from kit.core import console, fs, runner
from kit.core.allocators import Allocator, parse_allocator
from kit.core.boundary import report
from kit.core.errors import CommandFailedError, KitError, PackageError
from kit.core.options import Options, resolve_options
from kit.core.paths import Paths
from kit.core.records import Record, read_record, write_record
from kit.core.targets import Target, parse_targets
from kit.image.report import ReproFacts

CHILD_TIMEOUT_S = 600.0
# Options fields that are not settings (kit.core.options keeps them out of flags too).


class ReproRequest(Record):
    KIND = "static-rust-kit/repro-request"
    VERSION = 1
    TITLE = "reproducibility request"

    root: str  # the project root, absolute
    options: dict[str, Any]  # every setting, as flags for resolve_options
    dist: str  # the child's dist/ (absolute): its dist/oci receives the second packaging
    allocator: str
    targets: tuple[str, ...]  # triples


def layout_digests(paths: Paths, image: str) -> dict[str, str]:
    """sha256 of every file of the layout directory and of the tarball, by a relative name."""
    layout = paths.layout(image)
    digests = {
        f"{image}/{p.relative_to(layout).as_posix()}": fs.sha256_of(p)
        for p in sorted(layout.rglob("*"))
        if p.is_file()
    }
    digests[paths.tarball(image).name] = fs.sha256_of(paths.tarball(image))
    return digests


def compare_outputs(first: Paths, second: Paths, image: str) -> int:
    """The number of files compared; PackageError listing every file that differs."""
    a, b = layout_digests(first, image), layout_digests(second, image)
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    if differ:
        raise PackageError(
            "Two packagings of the same inputs, in two processes, differ in: " + ", ".join(differ),
            hint="Something nondeterministic reached the image; see kit/image/oci.py's notes.",
        )
    return len(a)


def check_reproducible(
    opts: Options, first: Paths, allocator: Allocator, targets: tuple[Target, ...]
) -> ReproFacts:
    """Package again in a child process into a temp dir and compare every file with `first`."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kit-repro-") as tmp:
        second = dataclasses.replace(first, dist=Path(tmp) / "dist")
        request = Path(tmp) / "request.json"
        write_record(
            request,
            ReproRequest(
                root=str(opts.root.resolve()),
                options=opts.as_flags(),
                dist=str(second.dist),
                allocator=allocator.name,
                targets=tuple(t.triple for t in targets),
            ),
        )
        try:
            done = runner.run(
                [sys.executable, "-m", "kit.image.repro", str(request)],
                cwd=opts.root,
                timeout=CHILD_TIMEOUT_S,
                what="kit.image.repro",
                on_line=lambda _stream, line: console.verbose(line),
            )
        except CommandFailedError as e:
            why = f"exit code {e.returncode}" if e.returncode is not None else e.message
            raise PackageError(
                f"The second packaging (--check-reproducible, in a fresh process) failed "
                f"({why}):\n{e.output}"
            ) from None
        if done.dry:
            return ReproFacts(checked=False)
        files = compare_outputs(first, second, opts.image_name)
    console.success(f"reproducible: {files} files byte-identical across two packagings")
    return ReproFacts(checked=True, files=files, seconds=round(time.monotonic() - started, 3))


def repackage(request: ReproRequest) -> None:
    """The child's work: the same packaging from scratch, into the request's dist/."""
    # Imported here, not at the top: kit.image.package imports this module for the parent's side.
    from kit.image.package import package_into

    opts = resolve_options(Path(request.root), flags=request.options, environ={})
    project = read_project(opts.manifest)
    out = dataclasses.replace(Paths.of(opts), dist=Path(request.dist))
    choice = ShippingChoice(parse_allocator(request.allocator), "flag")
    targets = parse_targets(list(request.targets))
    package_into(opts, project, out, targets=targets, choice=choice, build=False, budget=False)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        console.error("usage: python -m kit.image.repro REQUEST.json")
        return 2
    try:
        repackage(read_record(ReproRequest, Path(args[0])))
    except KitError as e:
        report(e)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
