"""The kit's own cache: what it builds once and shares across every project it builds (std for
a target, the allocator objects injected at link time). Entries are keyed by everything that
changes their content (toolchain, target, version, flags), so an entry is never stale: a
different input is a different directory. Entries are made in a temporary directory beside
their final place and renamed into it, so an interrupted build leaves no half entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kit.core import fs
from kit.core.options import Options


def cache_root(opts: Options) -> Path:
    if opts.sources.get("cache_dir", "default") == "default" and os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "static-rust-kit"
    return opts.path(opts.cache_dir.expanduser())


def key_of(inputs: dict[str, Any]) -> str:
    """A short, stable digest of an entry's inputs (the directory name of the entry)."""
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def entry(root: Path, kind: str, inputs: dict[str, Any], make: Callable[[Path], None]) -> Path:
    """The cache directory for `inputs` under `root/kind`, made by `make(tmpdir)` when missing.

    `make` fills a fresh temporary directory; it becomes the entry only when `make` returns,
    together with an inputs.json that says what the entry was built from.
    """
    final = root / kind / key_of(inputs)
    if (final / "inputs.json").is_file():
        return final
    with fs.atomic_dir(final) as work:
        make(work)
        (work / "inputs.json").write_text(json.dumps(inputs, indent=2, sort_keys=True) + "\n")
    return final
