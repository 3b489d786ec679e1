from __future__ import annotations

from importlib.metadata import version

from kit.machine.setup import missing_python_packages, pinned_requirements


def test_pins_are_read_from_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        "[project]\n"
        'name = "x"\n'
        "dependencies = [\n"
        '  "rich==15.0.0",\n'
        '  "Cyclonedx-Python-Lib[json-validation]==11.12.0",\n'
        '  "loose>=1",\n'
        "]\n"
    )
    assert pinned_requirements(tmp_path / "pyproject.toml") == {
        "rich": "15.0.0",
        "cyclonedx-python-lib": "11.12.0",
    }


def test_missing_or_other_version_is_reinstalled():
    pins = {"rich": version("rich"), "no-such-package-kit": "1.0", "pytest": "0.0.1"}
    assert missing_python_packages(pins) == ["no-such-package-kit==1.0", "pytest==0.0.1"]
