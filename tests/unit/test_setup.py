from __future__ import annotations

from importlib.metadata import version

import pytest

from kit.core.errors import CommandFailedError, ConfigError, ToolMissingError
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


def test_purposes_choose_what_is_installed(monkeypatch):
    from kit.machine import setup

    assert [p.name for p in setup.parse_purposes(None)] == list(setup.PURPOSES)
    assert [p.name for p in setup.parse_purposes("package, build,package")] == [
        "package",
        "build",
    ]
    monkeypatch.setattr(setup.runner, "which", lambda prog: None)  # nothing installed
    monkeypatch.setattr(setup, "_dpkg_installed", lambda pkg: False)
    monkeypatch.setattr(setup, "_needs_std_source", lambda: False)  # rustup target add worked
    package = setup.missing_debian_packages(setup.parse_purposes("package"))
    assert package == ["skopeo"]  # no wrk, umoci or docker-registry for packaging
    build = setup.missing_debian_packages(setup.parse_purposes("build"))
    assert "llvm" in build and "wrk" not in build and "rustc-web" not in build
    monkeypatch.setattr(setup, "_needs_std_source", lambda: True)  # no prebuilt musl std
    assert {"rustc-web", "rust-web-src"} <= set(
        setup.missing_debian_packages(setup.parse_purposes("build"))
    )
    bench = setup.parse_purposes("bench")
    assert set(setup.missing_debian_packages(bench)) == {
        "wrk",
        "valgrind",
        "pkg-config",
        "libssl-dev",
    }
    assert [t for p in bench for t in p.cargo_tools] == ["oha"]


@pytest.mark.parametrize(
    ("spec", "needle"), [("bild", "did you mean 'build'"), (",", "no purpose")]
)
def test_an_unknown_purpose_is_a_config_error(spec, needle):
    from kit.machine import setup

    with pytest.raises(ConfigError) as info:
        setup.parse_purposes(spec)
    assert info.value.exit_code == 2 and needle in info.value.message


def test_apt_runs_through_passwordless_sudo_when_not_root(monkeypatch):
    from kit.machine import setup

    ran: list[list[str]] = []

    def fake_run(argv, **kw):
        ran.append(list(argv))
        if argv[:2] == ["sudo", "-n"] and sudo_fails:
            raise CommandFailedError("sudo: a password is required", argv=list(argv))

    monkeypatch.setattr(setup.os, "geteuid", lambda: 1001)
    monkeypatch.setattr(setup.runner, "which", lambda prog: f"/usr/bin/{prog}")
    monkeypatch.setattr(setup.runner, "run", fake_run)
    monkeypatch.setattr(setup, "_is_debian", lambda: True)
    sudo_fails = False
    setup.install_system_packages(["wrk"])
    assert ran[1:] == [
        ["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "update", "-qq"],
        [
            "sudo",
            "-n",
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            *["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
        ],
    ]
    sudo_fails = True  # a password would be asked: never hang a CI job on a prompt
    with pytest.raises(ToolMissingError) as info:
        setup.install_system_packages(["wrk"])
    assert "root or passwordless sudo" in info.value.message
    assert "apt-get install -y -qq --no-install-recommends wrk" in (info.value.hint or "")
    monkeypatch.setattr(setup.os, "geteuid", lambda: 0)  # root: no sudo
    ran.clear()
    setup.install_system_packages(["wrk"])
    assert ran[0] == ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "update", "-qq"]


def test_tool_versions_come_from_cargos_list_and_cross_is_never_run(monkeypatch):
    """`cross --version` re-installs rustup's default toolchain and adds rust-src to it: the
    kit reads the versions cargo recorded instead, with one `cargo install --list`."""
    from kit.build import toolchain
    from kit.core import runner

    calls: list[list[str]] = []

    def capture(argv, **kwargs):
        calls.append(list(argv))
        return "cargo-auditable v0.7.7:\n    cargo-auditable\ncross v0.2.5:\n    cross\n"

    monkeypatch.setattr(runner, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(runner, "capture", capture)
    toolchain.forget_installed_crates()
    try:
        assert toolchain.cross_version() == "0.2.5"
        assert toolchain.cargo_auditable_version() == "0.7.7"
        assert calls == [["cargo", "install", "--list"]]
    finally:
        toolchain.forget_installed_crates()
