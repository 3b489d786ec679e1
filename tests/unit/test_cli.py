"""invoke's conventions, held by the kit's tasks: --dry starts nothing, one meaning per short
flag, exit 2 for a flag that does not parse. Run in-process, with the unit guard armed: any
process the task tried to start would fail the test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from invoke.collection import Collection
from invoke.program import Program

import tasks
from kit.build import toolchain
from kit.cli import SHORT_FLAGS
from kit.core import engine


def program() -> Program:
    return Program(namespace=Collection.from_module(tasks), version="test")


@pytest.fixture
def offline_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rustup home with one toolchain that carries std source, and no Docker engine."""
    sysroot = tmp_path / "rustup" / "toolchains" / "with-src"
    (sysroot / "lib/rustlib/src/rust/library/std").mkdir(parents=True)
    (sysroot / "lib/rustlib/src/rust/library/std/Cargo.toml").write_text("[package]\n")
    monkeypatch.setenv("RUSTUP_HOME", str(tmp_path / "rustup"))
    monkeypatch.delenv("RUSTUP_TOOLCHAIN", raising=False)
    # cargo-zigbuild is a console script of this interpreter's environment
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setattr(engine, "ping", lambda: None)
    # nothing from earlier runs in the repository's own dist/ or reports/ may answer for a task
    for key in ("DIST_DIR", "TARGET_DIR", "REPORTS_DIR", "CACHE_DIR"):
        monkeypatch.setenv(f"KIT_{key}", str(tmp_path / key.lower()))
    toolchain.rust_toolchains.cache_clear()
    yield
    toolchain.rust_toolchains.cache_clear()


def test_dry_build_of_the_whole_matrix_starts_no_process(offline_host, capsys):
    program().run(["invoke", "--dry", "build", "-t", "all", "-a", "all"], exit=False)
    err = capsys.readouterr().err
    planned = [line for line in err.splitlines() if "(dry run, not started)" in line]
    assert any("cargo metadata" in line for line in planned)
    # std from source: built once per target into the kit's cache, then passed as --sysroot
    std = [line for line in planned if "-Zbuild-std=std,panic_unwind,panic_abort" in line]
    assert len(std) == 2, err
    builds = [line for line in planned if " zigbuild " in line and line not in std]
    assert len(builds) == 6, err
    assert all("--sysroot=" in line and "-Zbuild-std" not in line for line in builds)
    for triple in ("x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"):
        assert sum(f"--target {triple}" in line for line in builds) == 3
    assert sum("--features jemalloc" in line for line in builds) == 2
    assert "6 build(s) planned, none started" in err


def test_short_flags_mean_one_thing_in_every_task():
    seen: dict[str, set[str]] = {}
    for name in Collection.from_module(tasks).task_names:
        task = Collection.from_module(tasks)[name]
        for arg in task.get_arguments():
            shorts = [n for n in arg.names if len(n) == 1]
            for short in shorts:
                seen.setdefault(short, set()).add(arg.attr_name or arg.name)
    assert seen, "no task has a short flag"
    collisions = {s: longs for s, longs in seen.items() if len(longs) > 1}
    assert not collisions
    for short, longs in seen.items():
        (long_name,) = longs
        assert SHORT_FLAGS.get(long_name.replace("-", "_")) == short


@pytest.mark.parametrize(
    "argv",
    [
        ["build", "--bogus"],
        ["package", "--allocator"],  # a flag that needs a value, given none
        ["release-check", "-z"],
    ],
)
def test_a_flag_that_does_not_parse_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        program().run(["invoke", *argv])
    assert e.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["package", "-t", "all", "-a", "system"],
        ["release-check", "-t", "all", "-a", "all"],
    ],
)
def test_a_task_reads_the_cargo_project_once(offline_host, capsys, argv):
    program().run(["invoke", "--dry", *argv], exit=False)
    err = capsys.readouterr().err
    planned = [line for line in err.splitlines() if "(dry run, not started)" in line]
    assert sum("cargo metadata" in line and "--no-deps" in line for line in planned) == 1, err
    assert any(" zigbuild " in line for line in planned)


def test_the_console_command_finds_cargo_toml_from_the_current_directory(
    offline_host, tmp_path, monkeypatch, capsys
):
    from kit.cli import program as console_command

    crate = tmp_path / "elsewhere" / "tool"
    (crate / "src" / "bin").mkdir(parents=True)
    (crate / "Cargo.toml").write_text('[package]\nname = "tool"\nversion = "0.3.0"\n')
    (crate / "src" / "bin" / "tool.rs").write_text("fn main() {}\n")
    monkeypatch.chdir(crate / "src" / "bin")
    monkeypatch.delenv("KIT_TARGET_DIR")  # the crate's own, beside its Cargo.toml
    console_command().run(["srk", "--dry", "build", "-t", "aarch64", "-a", "system"], exit=False)
    err = capsys.readouterr().err
    builds = [line for line in err.splitlines() if " zigbuild " in line and "<probe>" not in line]
    assert len(builds) == 1 and f"--manifest-path {crate / 'Cargo.toml'}" in builds[0]
    assert f"CARGO_TARGET_DIR={crate / 'target'}" in builds[0]


def test_the_console_command_exits_2_on_a_bad_flag(capsys):
    from kit.cli import program as console_command

    with pytest.raises(SystemExit) as e:
        console_command().run(["srk", "build", "--bogus"])
    assert e.value.code == 2
