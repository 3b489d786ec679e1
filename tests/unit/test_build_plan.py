from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from kit.build.backends import HostFacts
from kit.build.plan import plan_build
from kit.build.run import executables
from kit.build.smoke import SmokeResult, check_report, parse_report
from kit.build.toolchain import RustToolchain, choose_std
from kit.core.allocators import JEMALLOC, MIMALLOC, SYSTEM
from kit.core.errors import ConfigError, ToolMissingError
from kit.core.options import resolve_options
from kit.core.targets import AARCH64_MUSL, X86_64_GNU, X86_64_MUSL

STABLE = RustToolchain(
    name="stable",
    rustc_version="1.95.0",
    rustc_verbose="rustc 1.95.0",
    cargo_version="1.95.0",
    sysroot=Path("/rustup/stable"),
    prebuilt_targets=frozenset({"x86_64-unknown-linux-gnu"}),
    has_std_source=False,
    is_default=True,
)
WITH_SOURCE = RustToolchain(
    name="debian-web",
    rustc_version="1.96.0",
    rustc_verbose="rustc 1.96.0",
    cargo_version="1.96.0",
    sysroot=Path("/usr"),
    prebuilt_targets=frozenset({"x86_64-unknown-linux-gnu"}),
    has_std_source=True,
    rustc_vv="rustc 1.96.0\nbinary: rustc\ncommit-hash: ac68faa\nhost: x86_64-unknown-linux-gnu",
)
WITH_MUSL = RustToolchain(
    name="stable",
    rustc_version="1.95.0",
    rustc_verbose="rustc 1.95.0",
    cargo_version="1.95.0",
    sysroot=Path("/rustup/stable"),
    prebuilt_targets=frozenset(
        {"x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"}
    ),
    has_std_source=False,
    is_default=True,
)
HOST = HostFacts(
    arch="x86_64", zig=True, cargo_zigbuild=True, cross=False, docker=True, cargo_auditable=True
)
NO_ZIG = dataclasses.replace(HOST, zig=False, cargo_zigbuild=False, docker=False)


@pytest.fixture
def opts(tmp_path):
    return resolve_options(tmp_path, environ={"KIT_CACHE_DIR": str(tmp_path / "cache")})


def test_prebuilt_std_is_preferred_when_installed():
    plan = choose_std(X86_64_MUSL, (WITH_SOURCE, WITH_MUSL))
    assert plan.std == "prebuilt" and plan.toolchain is WITH_MUSL


def test_std_from_source_when_no_prebuilt_std():
    plan = choose_std(AARCH64_MUSL, (STABLE, WITH_SOURCE))
    assert plan.std == "build-std" and plan.toolchain is WITH_SOURCE


def test_no_way_to_get_std_is_an_actionable_error():
    with pytest.raises(ToolMissingError) as e:
        choose_std(AARCH64_MUSL, (STABLE,))
    assert "rustup target add aarch64-unknown-linux-musl" in e.value.hint


def test_std_from_source_comes_from_the_kits_cached_sysroot(opts, monkeypatch):
    monkeypatch.setenv("CARGO_HOME", "/home/builder/.cargo")
    plan = plan_build(opts, AARCH64_MUSL, JEMALLOC, toolchains=(STABLE, WITH_SOURCE), host=HOST)
    argv, env = plan.invocation.argv, plan.invocation.env
    assert plan.request.std.std == "cached-sysroot"
    sysroot = plan.request.std.sysroot
    assert sysroot is not None
    assert sysroot.parent == opts.root / "cache" / "std" / "aarch64-unknown-linux-musl"
    assert plan.backend == "zigbuild"
    assert argv[:3] == ("cargo", "+debian-web", "zigbuild")
    assert not any(a.startswith("-Z") for a in argv)
    cfg = argv[argv.index("--config") + 1]
    target = opts.root / "target"  # a built binary names neither it nor cargo's home
    assert cfg == (
        'target.aarch64-unknown-linux-musl.rustflags = ["-C", "link-self-contained=no", '
        f'"--sysroot={sysroot}", "--remap-path-prefix={target}=/target", '
        '"--remap-path-prefix=/home/builder/.cargo=/cargo"]'
    )
    assert "RUSTC_BOOTSTRAP" not in env  # no unstable flag is left in the build itself
    assert env["JEMALLOC_SYS_WITH_LG_PAGE"] == "16"


def test_std_cache_false_builds_std_in_the_projects_target_dir(tmp_path):
    opts = resolve_options(tmp_path, environ={"KIT_STD_CACHE": "false"})
    plan = plan_build(opts, AARCH64_MUSL, JEMALLOC, toolchains=(STABLE, WITH_SOURCE), host=HOST)
    argv, env = plan.invocation.argv, plan.invocation.env
    assert plan.request.std.std == "build-std" and plan.request.std.sysroot is None
    assert plan.backend == "zigbuild"
    assert argv[:3] == ("cargo", "+debian-web", "zigbuild")
    assert "-Zbuild-std=std,panic_unwind" in argv
    assert argv[argv.index("--target") : argv.index("--target") + 2] == (
        "--target",
        "aarch64-unknown-linux-musl",
    )
    assert "--locked" in argv and "--release" in argv
    assert argv[argv.index("--features") + 1] == "jemalloc"
    cfg = argv[argv.index("--config") + 1]
    assert cfg.startswith(
        'target.aarch64-unknown-linux-musl.rustflags = ["-C", "link-self-contained=no", '
        '"--remap-path-prefix='
    )
    assert env["RUSTC_BOOTSTRAP"] == "1"
    assert env["JEMALLOC_SYS_WITH_LG_PAGE"] == "16"
    assert env["CARGO_TARGET_DIR"] == str(opts.root / "target")


def test_prebuilt_musl_needs_no_bootstrap_or_self_contained_override(opts):
    plan = plan_build(opts, X86_64_MUSL, SYSTEM, toolchains=(WITH_MUSL,), host=HOST)
    assert plan.backend == "zigbuild"
    assert "RUSTC_BOOTSTRAP" not in plan.invocation.env
    assert not any(a.startswith("-Zbuild-std") for a in plan.invocation.argv)
    cfg = plan.invocation.argv[plan.invocation.argv.index("--config") + 1]
    assert "link-self-contained" not in cfg and "--remap-path-prefix=" in cfg  # only the remaps
    assert "--features" not in plan.invocation.argv


def test_glibc_baseline_is_static_via_crt_static_with_plain_cargo(opts):
    plan = plan_build(opts, X86_64_GNU, SYSTEM, toolchains=(STABLE, WITH_SOURCE), host=HOST)
    assert plan.backend == "cargo"
    assert plan.invocation.argv[:3] == ("cargo", "+stable", "build")
    assert 'rustflags = ["-C", "target-feature=+crt-static", "--remap' in " ".join(
        plan.invocation.argv
    )


def test_auto_falls_back_to_cargo_for_host_musl_without_zig(opts):
    plan = plan_build(opts, X86_64_MUSL, MIMALLOC, toolchains=(WITH_MUSL,), host=NO_ZIG)
    assert plan.backend == "cargo"


def test_no_backend_for_foreign_arch_without_zig_or_cross(opts):
    with pytest.raises(ToolMissingError) as e:
        plan_build(opts, AARCH64_MUSL, SYSTEM, toolchains=(WITH_MUSL,), host=NO_ZIG)
    msg = e.value.message
    assert "zigbuild:" in msg and "cargo: no native linker" in msg and "cross:" in msg


def test_unknown_backend(opts):
    with pytest.raises(ConfigError, match="Unknown backend 'zig'"):
        plan_build(opts, X86_64_MUSL, SYSTEM, toolchains=(WITH_MUSL,), host=HOST, backend="zig")


def test_executables_from_cargo_json_messages():
    lines = [
        json.dumps(
            {
                "reason": "compiler-artifact",
                "target": {"kind": ["lib"], "name": "dep"},
                "executable": None,
            }
        ),
        json.dumps(
            {
                "reason": "compiler-artifact",
                "target": {"kind": ["custom-build"], "name": "build-script-build"},
                "executable": "/t/build/x/build-script-build",
            }
        ),
        json.dumps(
            {
                "reason": "compiler-artifact",
                "target": {"kind": ["bin"], "name": "app"},
                "executable": "/t/release/app",
            }
        ),
        json.dumps(
            {
                "reason": "compiler-artifact",
                "target": {"kind": ["bin"], "name": "tool"},
                "executable": "/t/release/tool",
            }
        ),
        "warning: not json",
        json.dumps({"reason": "build-finished", "success": True}),
    ]
    out = "\n".join(lines)
    assert executables(out, ()) == [Path("/t/release/app"), Path("/t/release/tool")]
    assert executables(out, ("tool",)) == [Path("/t/release/tool")]


def test_version_report_is_checked_against_the_request():
    out = (
        "rust_sample 0.1.0 allocator=jemalloc target=x86_64-unknown-linux-musl libc=musl "
        "allocator_version=5.3.0"
    )
    report = parse_report(out)
    assert report["allocator"] == "jemalloc" and report["allocator_version"] == "5.3.0"
    smoke = SmokeResult(("bin", "--version"), None, out, report)
    assert all(ok for _, ok, _ in check_report(smoke, X86_64_MUSL, "jemalloc"))
    bad = {name for name, ok, _ in check_report(smoke, AARCH64_MUSL, "mimalloc") if not ok}
    assert bad == {"reports-allocator", "reports-target"}


def test_a_binary_without_a_report_is_judged_by_the_elf_gates_only():
    smoke = SmokeResult(("bin", "--version"), None, "tool 1.2.3", {})
    assert check_report(smoke, X86_64_MUSL, "system") == []


def test_a_library_crate_is_told_it_has_no_binary(tmp_path):
    from kit.build.plan import check_project
    from kit.build.project import Package, Project

    lib = Package("just-a-lib", "1.0.0", tmp_path / "Cargo.toml", (), frozenset())
    project = Project(tmp_path / "Cargo.toml", tmp_path, (lib,))
    with pytest.raises(ConfigError) as e:
        check_project(project, (JEMALLOC,), ())
    assert "no binary to build" in e.value.message
    assert "feature" not in e.value.message


def test_the_project_is_read_from_cargo_toml_without_cargo_in_a_dry_run(tmp_path):
    from kit.build.project import project_from_manifest

    (tmp_path / "Cargo.toml").write_text(
        '[workspace]\nmembers = ["crates/*"]\n[workspace.package]\nversion = "2.1.0"\n'
    )
    for name, body in (("cli", '[[bin]]\nname = "tool"\n'), ("srv", "")):
        crate = tmp_path / "crates" / name
        (crate / "src").mkdir(parents=True)
        (crate / "src" / "main.rs").write_text("fn main() {}\n")
        (crate / "Cargo.toml").write_text(
            f'[package]\nname = "{name}"\nversion.workspace = true\n{body}'
            "[features]\njemalloc = []\n"
        )
    project = project_from_manifest(tmp_path / "Cargo.toml")
    assert project.bins == ("tool", "srv")
    assert {p.version for p in project.packages} == {"2.1.0"}
    assert all("jemalloc" in p.features for p in project.packages)


def test_builds_embed_their_dependency_list_unless_told_not_to(opts, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    plan = plan_build(opts, AARCH64_MUSL, JEMALLOC, toolchains=(STABLE, WITH_SOURCE), host=HOST)
    env, argv = plan.invocation.env, plan.invocation.argv
    # the wrapper by its name, never by a path of this machine: cargo hashes it into symbols
    assert plan.request.auditable and env["RUSTC_WORKSPACE_WRAPPER"] == "cargo-auditable"
    assert "auditable" not in argv
    # what cargo-auditable's wrapper reads back for its `cargo metadata`: the same --config
    orig = json.loads(env["CARGO_AUDITABLE_ORIG_ARGS"])
    assert orig == {
        "offline": False,
        "locked": True,
        "frozen": False,
        "config": [argv[argv.index("--config") + 1]],
    }
    assert env["SOURCE_DATE_EPOCH"] == "0"  # C's __DATE__ and __TIME__, the same every build
    off = dataclasses.replace(opts, auditable=False)
    plain = plan_build(off, AARCH64_MUSL, JEMALLOC, toolchains=(STABLE, WITH_SOURCE), host=HOST)
    assert not plain.request.auditable
    assert not {"RUSTC_WORKSPACE_WRAPPER", "CARGO_AUDITABLE_ORIG_ARGS"} & set(plain.invocation.env)
    missing = dataclasses.replace(HOST, cargo_auditable=False)
    with pytest.raises(ToolMissingError) as e:
        plan_build(opts, AARCH64_MUSL, JEMALLOC, toolchains=(STABLE, WITH_SOURCE), host=missing)
    assert "cargo-auditable" in e.value.message and "auditable = false" in (e.value.hint or "")
