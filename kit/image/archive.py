"""Deterministic tar and gzip bytes: the same entries give the same bytes on every machine.

Sorted entries with explicit parent directories, uid/gid 0 and no owner names, fixed modes,
one mtime (SOURCE_DATE_EPOCH), GNU tar headers (no PAX records, so no atime/ctime); gzip
through GzipFile with mtime 0, no file name and a fixed level: Python 3.11's gzip.compress
writes the OS byte of the running platform, GzipFile always 255. Used for image layers and for
the `docker load` tarball alike.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

GZIP_LEVEL = 9


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, no leading slash: app/<binary>
    mode: int
    data: bytes | None = field(default=None, repr=False)  # None: a directory


def _with_parents(entries: Iterable[FileEntry]) -> list[FileEntry]:
    by_path = {e.path.strip("/"): e for e in entries}
    for path in list(by_path):
        for parent in PurePosixPath(path).parents:
            p = str(parent)
            if p != "." and p not in by_path:
                by_path[p] = FileEntry(p, 0o755)
    return [by_path[p] for p in sorted(by_path, key=lambda p: PurePosixPath(p).parts)]


def layer_tar(entries: Iterable[FileEntry], mtime: int) -> bytes:
    """A deterministic tar: sorted, explicit parents, root-owned, GNU headers, fixed mtime."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for e in _with_parents(entries):
            info = tarfile.TarInfo(e.path)
            info.mode = e.mode
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if e.data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
    return buf.getvalue()


def gzip_bytes(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """gzip with a fixed header: mtime 0, no file name, OS byte 255 (not gzip.compress)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=level, mtime=0, filename="") as gz:
        gz.write(data)
    return buf.getvalue()
