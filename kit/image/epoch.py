"""SOURCE_DATE_EPOCH: the one policy for "when was this made" in every reproducible artifact.

The image's timestamps and the release SBOM's both come from `source_date_epoch`, so the two
can never disagree about the same commit. The order follows reproducible-builds.org:

1. the SOURCE_DATE_EPOCH environment variable (a release pipeline pins it);
2. else the time of the last commit (`git log -1 --format=%ct`), the same on every machine
   that checks out that commit;
3. else 0 (no git, or not a work tree): still reproducible, just not meaningful.
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
    environ = os.environ if environ is None else environ
    raw = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(
                f"SOURCE_DATE_EPOCH={raw!r} is not an integer number of seconds."
            ) from None
        if value < 0:
            raise ConfigError(f"SOURCE_DATE_EPOCH={raw!r} is negative.")
        return value, FROM_ENV
    try:
        out = runner.capture(["git", "-C", str(root), "log", "-1", "--format=%ct"])
    except (CommandFailedError, ToolMissingError):
        out = ""  # not a git work tree, no commit yet, or no git at all
    if out.isdigit():
        return int(out), FROM_COMMIT
    return 0, FROM_DEFAULT
