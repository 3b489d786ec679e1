"""Allocators injected at link time: routes, plans, link arguments and the run-time evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.build.inject import Injection, pinned_version
from kit.build.plan import plan_build, relink, route_of
from kit.build.project import Package
from kit.core import cache
from kit.core.allocators import JEMALLOC, MIMALLOC, SYSTEM, Route, live_probe
from kit.core.errors import ConfigError
from kit.core.options import resolve_options
from kit.core.targets import X86_64_GNU, X86_64_MUSL
from tests.unit.test_build_plan import HOST, WITH_SOURCE

PLAIN = Package("app", "1.0.0", Path("/p/Cargo.toml"), ("app",), frozenset())
WITH_FEATURES = Package(
    "app", "1.0.0", Path("/p/Cargo.toml"), ("app",), frozenset({"jemalloc", "mimalloc"})
)


@pytest.mark.parametrize(
    ("alloc", "package", "link", "route"),
    [
        (SYSTEM, PLAIN, "auto", Route.LIBC),
        (JEMALLOC, PLAIN, "auto", Route.INJECTED),
        (JEMALLOC, WITH_FEATURES, "auto", Route.FEATURE),
        (MIMALLOC, WITH_FEATURES, "inject", Route.INJECTED),
        (MIMALLOC, WITH_FEATURES, "feature", Route.FEATURE),
    ],
)
def test_the_route_follows_the_crate_and_the_setting(alloc, package, link, route):
    assert route_of(alloc, X86_64_MUSL, (package,), link) is route


def test_a_feature_route_for_a_crate_without_the_feature_says_how_to_fix_it():
    with pytest.raises(ConfigError) as e:
        route_of(MIMALLOC, X86_64_MUSL, (PLAIN,), "feature")
    assert "no Cargo feature 'mimalloc'" in e.value.message
    assert 'allocator-link = "auto"' in e.value.hint


def test_injection_is_for_musl_only():
    with pytest.raises(ConfigError, match="only into musl binaries"):
        route_of(JEMALLOC, X86_64_GNU, (PLAIN,), "auto")


def test_an_injected_link_is_cargo_rustc_for_one_binary_reusing_the_plain_build(tmp_path):
    opts = resolve_options(tmp_path, environ={})
    plan = plan_build(
        opts, X86_64_MUSL, MIMALLOC, toolchains=(WITH_SOURCE,), host=HOST, route=Route.INJECTED
    )
    assert plan.invocation.argv[:3] == ("cargo", "+debian-web", "zigbuild")
    assert "--features" not in plan.invocation.argv  # the plain build: nothing added

    obj = Injection("mimalloc", "libmimalloc-sys 0.1.49", tmp_path / "mimalloc.o", "0" * 64)
    one = relink(plan, "app", "app-pkg", obj.link_args)
    argv = one.invocation.argv
    # cargo-zigbuild's rustc runs cargo, which inherits the auditable wrapper
    assert argv[:2] == ("cargo-zigbuild", "rustc")
    assert one.invocation.env["RUSTC_WORKSPACE_WRAPPER"] == "cargo-auditable"
    orig = json.loads(one.invocation.env["CARGO_AUDITABLE_ORIG_ARGS"])
    assert orig["config"] == [argv[argv.index("--config") + 1]]  # none of the link arguments
    assert one.invocation.env["RUSTUP_TOOLCHAIN"] == "debian-web"
    assert argv[argv.index("--package") + 1] == "app-pkg"
    assert argv[argv.index("--bin") + 1] == "app"
    # the link arguments go after `--`, to the final compilation only (not into rustflags,
    # which would rebuild every dependency and std for each allocator)
    assert argv[argv.index("--") + 1 :] == ("-C", f"link-arg={tmp_path / 'mimalloc.o'}")
    assert "link-arg" not in " ".join(argv[: argv.index("--")])


def test_jemalloc_is_linked_whole_so_every_malloc_symbol_comes_from_it(tmp_path):
    obj = Injection("jemalloc", "tikv-jemalloc-sys 0.7.1", tmp_path / "libjemalloc.a", "")
    assert obj.link_args == (
        "-C",
        "link-arg=-Wl,--whole-archive",
        "-C",
        f"link-arg={tmp_path / 'libjemalloc.a'}",
        "-C",
        "link-arg=-Wl,--no-whole-archive",
    )


def test_the_injected_versions_are_pinned_by_the_shims_lock_files():
    assert pinned_version("mimalloc", "libmimalloc-sys") == "0.1.49"
    assert pinned_version("jemalloc", "tikv-jemalloc-sys").startswith("0.7.1+")


def test_jemalloc_is_asked_through_the_variable_its_build_reads():
    unprefixed = live_probe("jemalloc", b"...MALLOC_CONF...")
    prefixed = live_probe("jemalloc", b"..._RJEM_MALLOC_CONF...")
    assert unprefixed is not None and unprefixed.env == {"MALLOC_CONF": "stats_print:true"}
    assert prefixed is not None and prefixed.env == {"_RJEM_MALLOC_CONF": "stats_print:true"}
    assert live_probe("system", b"") is None


MIMALLOC_STATS = """\
 pages           peak       total     current       block      total#
  touched   :     0           0           0                                ok
  pages     :     5          {total}           2
"""


def test_live_evidence_needs_allocations_not_only_a_banner():
    mi = live_probe("mimalloc", b"")
    je = live_probe("jemalloc", b"MALLOC_CONF")
    assert mi is not None and je is not None
    assert mi.passed("mimalloc", MIMALLOC_STATS.format(total=11))
    # mimalloc's banner comes from a constructor: with no page served it is not live
    assert not mi.passed("mimalloc", "mimalloc: process init\n" + MIMALLOC_STATS.format(total=0))
    assert je.passed("jemalloc", "x\n___ Begin jemalloc statistics ___\nVersion: 5.3")
    assert not je.passed("jemalloc", "hello\n")


def test_a_cache_entry_is_keyed_by_its_inputs_and_made_once(tmp_path):
    made = []

    def make(work: Path) -> None:
        made.append(work)
        (work / "out.o").write_text("object")

    inputs = {"allocator": "mimalloc", "target": "x86_64-unknown-linux-musl"}
    first = cache.entry(tmp_path, "alloc", inputs, make)
    again = cache.entry(tmp_path, "alloc", dict(reversed(inputs.items())), make)
    other = cache.entry(tmp_path, "alloc", {**inputs, "target": "aarch64"}, make)
    assert first == again != other and len(made) == 2
    assert (first / "out.o").read_text() == "object" and (first / "inputs.json").is_file()


def test_a_failed_cache_entry_leaves_nothing(tmp_path):
    def make(work: Path) -> None:
        (work / "half.o").write_text("half")
        raise RuntimeError("compiler crashed")

    with pytest.raises(RuntimeError):
        cache.entry(tmp_path, "alloc", {"a": 1}, make)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
