"""std built once into the kit's cache (kit.build.sysroot): the key, the plan, the recipe."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import pytest

from kit.build import sysroot
from kit.build.toolchain import RustToolchain, StdPlan, choose_std
from kit.core import cache, runner
from kit.core.options import resolve_options
from kit.core.targets import AARCH64_MUSL, X86_64_MUSL

VV = (
    "rustc 1.96.0 (ac68faa20 2026-05-25) (built from a source tarball)\nbinary: rustc\n"
    "commit-hash: ac68faa20c58cbccd01ee7208bf3b6e93a7d7f96\nhost: x86_64-unknown-linux-gnu\n"
    "release: 1.96.0\nLLVM version: 22.1.8"
)
SOURCE = RustToolchain(
    name="debian-web",
    rustc_version="1.96.0",
    rustc_verbose=VV.splitlines()[0],
    cargo_version="1.96.0",
    sysroot=Path("/usr"),
    prebuilt_targets=frozenset({"x86_64-unknown-linux-gnu"}),
    has_std_source=True,
    rustc_vv=VV,
)
PREBUILT_MUSL = dataclasses.replace(
    SOURCE,
    name="stable",
    has_std_source=False,
    prebuilt_targets=frozenset({"x86_64-unknown-linux-musl"}),
)


@pytest.fixture
def opts(tmp_path):
    return resolve_options(tmp_path, environ={"KIT_CACHE_DIR": str(tmp_path / "cache")})


def test_the_key_is_the_toolchain_the_target_and_the_recipe():
    key = cache.key_of(sysroot.inputs(SOURCE, X86_64_MUSL))
    assert key == cache.key_of(sysroot.inputs(SOURCE, X86_64_MUSL))  # stable
    rebuilt = dataclasses.replace(SOURCE, rustc_vv=VV.replace("ac68faa20c58", "0123456789ab"))
    others = {
        cache.key_of(sysroot.inputs(SOURCE, AARCH64_MUSL)),
        cache.key_of(sysroot.inputs(rebuilt, X86_64_MUSL)),
    }
    assert key not in others and len(others) == 2
    got = sysroot.inputs(SOURCE, X86_64_MUSL)
    assert got["crates"] == ["std", "panic_unwind", "panic_abort"]
    assert got["profile"]["opt-level"] == 3 and got["profile"]["panic"] == "unwind"
    assert "embed-bitcode=yes" in got["rustflags"]  # user crates with lto = true need it


def test_the_sysroot_lives_in_the_cache_by_target_and_key(tmp_path):
    where = sysroot.location(tmp_path, SOURCE, AARCH64_MUSL)
    key = cache.key_of(sysroot.inputs(SOURCE, AARCH64_MUSL))
    assert where == tmp_path / "std" / "aarch64-unknown-linux-musl" / key
    # the same place kit.core.cache.entry makes it in
    assert where == tmp_path / sysroot.kind(AARCH64_MUSL) / key


def test_a_dry_run_says_the_key_is_not_known():
    unprobed = dataclasses.replace(SOURCE, rustc_vv="")
    assert sysroot.location(Path("/c"), unprobed, X86_64_MUSL).name == sysroot.UNPROBED


def test_std_from_source_is_the_cached_sysroot_unless_turned_off(opts, tmp_path):
    plan = choose_std(AARCH64_MUSL, (SOURCE,), sysroot.locator(opts))
    assert plan.std == "cached-sysroot" and plan.from_source and not plan.build_std
    assert plan.sysroot == sysroot.location(tmp_path / "cache", SOURCE, AARCH64_MUSL)
    off = resolve_options(tmp_path, flags={"std_cache": False})
    assert sysroot.locator(off) is None
    plan = choose_std(AARCH64_MUSL, (SOURCE,), sysroot.locator(off))
    assert plan.std == "build-std" and plan.sysroot is None


def test_a_prebuilt_std_still_wins_over_the_cache(opts):
    plan = choose_std(X86_64_MUSL, (SOURCE, PREBUILT_MUSL), sysroot.locator(opts))
    assert plan.std == "prebuilt" and plan.sysroot is None and not plan.from_source


def test_the_probe_crate_builds_std_with_an_official_profile():
    manifest = tomllib.loads(sysroot.probe_manifest())
    assert manifest["cargo-features"] == ["profile-rustflags"]
    assert manifest["package"]["name"] == sysroot.PROBE
    assert "workspace" in manifest  # never a member of a surrounding workspace
    release = manifest["profile"]["release"]
    assert {k: v for k, v in release.items() if k != "package"} == sysroot.PROFILE
    # as rustc's bootstrap does: a crate with panic = "abort" needs it
    assert release["package"]["panic_abort"]["rustflags"] == ["-C", "panic=abort"]


def test_the_std_build_command(monkeypatch):
    monkeypatch.setenv("CARGO_HOME", "/home/builder/.cargo")
    inv = sysroot.build_invocation(SOURCE, AARCH64_MUSL, Path("/w/crate"), Path("/w/target"))
    argv = inv.argv
    assert argv[:3] == ("cargo", "+debian-web", "zigbuild")
    assert "-Zbuild-std=std,panic_unwind,panic_abort" in argv and "--release" in argv
    cfg = argv[argv.index("--config") + 1]
    assert cfg == (
        'target.aarch64-unknown-linux-musl.rustflags = ["-C", "embed-bitcode=yes", '
        '"-C", "link-self-contained=no", "--remap-path-prefix=/w/target=/target", '
        '"--remap-path-prefix=/home/builder/.cargo=/cargo"]'
    )
    assert inv.env == {"CARGO_TARGET_DIR": "/w/target", "RUSTC_BOOTSTRAP": "1"}
    nightly = dataclasses.replace(SOURCE, rustc_verbose="rustc 1.97.0-nightly (x 2026-06-01)")
    inv = sysroot.build_invocation(nightly, AARCH64_MUSL, Path("/w/crate"), Path("/w/target"))
    assert "RUSTC_BOOTSTRAP" not in inv.env


def _artifact(name: str, kind: str, files: list[str]) -> str:
    return json.dumps(
        {
            "reason": "compiler-artifact",
            "target": {"name": name, "kind": [kind]},
            "filenames": files,
        }
    )


def test_the_sysroot_takes_std_and_its_dependencies_but_not_the_probe():
    out = "\n".join(
        [
            _artifact("build-script-build", "custom-build", ["/t/build/std-1/build-script-build"]),
            _artifact("core", "lib", ["/t/deps/libcore-1.rlib", "/t/deps/libcore-1.rmeta"]),
            _artifact("libc", "lib", ["/t/deps/liblibc-2.rlib", "/t/deps/liblibc-2.rmeta"]),
            _artifact("std", "rlib", ["/t/deps/libstd-3.rlib", "/t/deps/libstd-3.rmeta"]),
            _artifact(sysroot.PROBE, "bin", ["/t/release/kit-std-probe"]),
            json.dumps({"reason": "build-finished", "success": True}),
            "   Compiling std",
        ]
    )
    got = [p.name for p in sysroot.std_libraries(out)]
    assert got == [
        "libcore-1.rlib",
        "libcore-1.rmeta",
        "liblibc-2.rlib",
        "liblibc-2.rmeta",
        "libstd-3.rlib",
        "libstd-3.rmeta",
    ]


def test_a_sysroot_in_the_cache_is_used_as_it_is(opts, tmp_path):
    plan = choose_std(X86_64_MUSL, (SOURCE,), sysroot.locator(opts))
    assert plan.sysroot is not None
    plan.sysroot.mkdir(parents=True)
    (plan.sysroot / "inputs.json").write_text("{}")
    assert sysroot.ensure(opts, plan) == plan.sysroot  # no process: the guard would fail it


def test_nothing_is_built_for_prebuilt_std_or_cross(opts, monkeypatch):
    made: list[StdPlan] = []
    monkeypatch.setattr(sysroot, "ensure", lambda o, std: made.append(std))
    cached = choose_std(X86_64_MUSL, (SOURCE,), sysroot.locator(opts))
    prebuilt = choose_std(X86_64_MUSL, (PREBUILT_MUSL,), sysroot.locator(opts))
    sysroot.prepare(
        opts,
        [(prebuilt, "zigbuild"), (cached, "cross"), (cached, "zigbuild"), (cached, "zigbuild")],
    )
    assert made == [cached]  # once, however many builds share it


def test_a_dry_run_plans_the_std_build_and_makes_nothing(opts, tmp_path, capsys):
    plan = choose_std(X86_64_MUSL, (SOURCE,), sysroot.locator(opts))
    runner.set_dry(True)
    try:
        sysroot.ensure(opts, plan)
    finally:
        runner.set_dry(False)
    assert "-Zbuild-std=std,panic_unwind,panic_abort" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()
