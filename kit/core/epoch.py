"""SOURCE_DATE_EPOCH: the one policy for "when was this made" in every reproducible artifact.

The image's timestamps and the release SBOM's both come from `source_date_epoch`, so the two
can never disagree about the same commit. The order follows reproducible-builds.org:

1. the SOURCE_DATE_EPOCH environment variable (a release pipeline pins it);
2. else the time of the last commit (`git log -1 --format=%ct`), the same on every machine
   that checks out that commit;
3. else 0 (no git, or not a work tree): still reproducible, just not meaningful.

Builds set it too (`build_epoch`): C compilers (gcc, clang, zig cc) stamp __DATE__ and __TIME__
with it, and C dependencies use them (mimalloc's options.c prints its build date), so without
it the same commit gave other bytes at another minute, or from another zig cache.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from kit.core import runner
from kit.core.errors import CommandFailedError, ConfigError, ToolMissingError

FROM_ENV = "env SOURCE_DATE_EPOCH"
FROM_COMMIT = "last commit"
FROM_DEFAULT = "default (no commit)"


def source_date_epoch(root: Path, environ: Mapping[str, str] | None = None) -> tuple[int, str]:
    """(epoch seconds, where it came from), under the policy in this module's docstring.

    A SOURCE_DATE_EPOCH that is set but not a non-negative integer is a ConfigError: silently
    falling back would stamp the artifact with a time nobody chose.
    """
    pinned = from_environment(environ)
    if pinned is not None:
        return pinned, FROM_ENV
    try:
        out = runner.capture(["git", "-C", str(root), "log", "-1", "--format=%ct"])
    except (CommandFailedError, ToolMissingError):
        out = ""  # not a git work tree, no commit yet, or no git at all
    if out.isdigit():
        return int(out), FROM_COMMIT
    return 0, FROM_DEFAULT


def from_environment(environ: Mapping[str, str] | None = None) -> int | None:
    """SOURCE_DATE_EPOCH as the environment sets it, None where it is unset or empty."""
    environ = os.environ if environ is None else environ
    raw = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"SOURCE_DATE_EPOCH={raw!r} is not an integer number of seconds."
        ) from None
    if value < 0:
        raise ConfigError(f"SOURCE_DATE_EPOCH={raw!r} is negative.")
    return value


BUILD_DEFAULT = 0


def build_epoch(environ: Mapping[str, str] | None = None) -> int:
    """SOURCE_DATE_EPOCH for a build's compilers: the environment's, else 0 (1 Jan 1970).

    Not the last commit's time, which images use: cargo does not rerun a C build script when
    the variable changes (cc-rs does not declare it) and zig's cache may keep an object, so a
    warm target dir would keep an earlier commit's stamp, and the same commit would give other
    bytes than on a fresh runner. A fixed value gives the same bytes however warm the caches.
    """
    pinned = from_environment(environ)
    return BUILD_DEFAULT if pinned is None else pinned
