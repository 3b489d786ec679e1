"""This repository's tasks: the kit's own (kit/tasks.py), with the root pinned here.

A project of your own needs one line in its tasks.py: `from kit.tasks import *`
(or no tasks.py at all: `static-rust-kit build -t aarch64` in the Cargo project).
"""

from pathlib import Path

from invoke.collection import Collection

import kit.tasks
from kit.tasks import *  # noqa: F403

# The root is where this file is, whichever directory invoke was started from.
ns = Collection.from_module(kit.tasks)
ns.configure({"kit": {"root": str(Path(__file__).resolve().parent)}})
