"""kit/sessions.py: the kit's nox sessions, for a user's noxfile in one import."""

from __future__ import annotations

from pathlib import Path

from nox import registry

import kit.sessions
from kit.sessions import kit_requirement

ROOT = Path(__file__).resolve().parents[2]


def test_one_import_registers_the_kits_sessions():
    names = set(registry.get())
    assert {"build", "bench", "package", "release-check"} <= names
    assert set(kit.sessions.__all__) == {"build", "bench", "package", "release_check"}


def test_a_session_installs_the_kit_that_is_running_with_the_extras_it_needs():
    # This checkout is installed in editable mode (README: pip install -e .), so a session
    # installs the same checkout, editable, rather than some other version from an index.
    assert kit_requirement(("bench",)) == ["-e", f"{ROOT}[bench]"]
    assert kit_requirement() == ["-e", str(ROOT)]
