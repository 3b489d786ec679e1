"""`--backend cross`: which image, which std, what cross is told (pure: no process, no engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.build import cross_image
from kit.build.backends import HostFacts
from kit.build.backends.cross import (
    CrossConfig,
    CrossSetup,
    host_path,
    parse_cross_toml,
    read_cross_config,
    rustc_shim,
    rustup_shim,
)
from kit.build.plan import plan_build
from kit.core.allocators import JEMALLOC, SYSTEM
from kit.core.errors import ConfigError, ToolMissingError
from kit.core.options import resolve_options
from kit.core.targets import AARCH64_MUSL, SHIPPING_TARGETS, X86_64_GNU, X86_64_MUSL
from tests.unit.test_build_plan import STABLE as HOST_TC

SOURCES = cross_image.Sources(
    "bookworm",
    (
        "deb http://deb.debian.org/debian bookworm main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
    ),
    "amd64",
)
RECIPE = cross_image.Recipe(
    sources=SOURCES,
    packages={"rustc-web": "1.96.0+dfsg1-1~deb12u2", "cargo-web": "1.96.0+dfsg1-1~deb12u2"},
    zig_version="0.15.2",
    zig_dir=Path("/zig"),
    cargo_zigbuild=Path("/bin/cargo-zigbuild"),
    cargo_zigbuild_version="0.24.0",
)
WITH_CROSS = HostFacts(
    arch="x86_64", zig=True, cargo_zigbuild=True, cross=True, docker=True, cargo_auditable=True
)


def setup(**kw) -> CrossSetup:
    base = dict(
        config=CrossConfig(),
        setting="auto",
        kit_tag=RECIPE.tag,
        kit_present=False,
        kit_toolchain=cross_image.image_toolchain(RECIPE),
        registry=False,
        shims=Path("/cache/cross/shims"),
        environ={"PATH": "/usr/bin:/bin"},
    )
    base.update(kw)
    return CrossSetup(**base)


@pytest.fixture
def opts(tmp_path):
    return resolve_options(tmp_path, environ={"KIT_CACHE_DIR": str(tmp_path / "cache")})


# --- which image -----------------------------------------------------------------------------


def test_offline_auto_takes_the_kits_image_and_its_prebuilt_std():
    s = setup()
    image = s.image(AARCH64_MUSL)
    assert image.kit and image.ref == RECIPE.tag and "built from Debian" in image.origin
    std = s.std(AARCH64_MUSL, (HOST_TC,))
    assert std.std == "cross-image" and std.from_source and std.sysroot is None
    assert std.toolchain.rustc_version == "1.96.0"


def test_with_a_registry_and_no_kit_image_auto_keeps_crosss_own():
    s = setup(registry=True)
    image = s.image(AARCH64_MUSL)
    assert not image.kit and image.ref == "ghcr.io/cross-rs/aarch64-unknown-linux-musl:0.2.5"
    assert s.std(AARCH64_MUSL, (HOST_TC,)).std == "cross"


def test_a_kit_image_in_the_engine_wins_over_the_registry():
    assert setup(registry=True, kit_present=True).image(X86_64_MUSL).kit


def test_the_users_image_wins_from_cross_toml_or_the_environment():
    config = CrossConfig(path=Path("Cross.toml"), images={X86_64_MUSL.triple: "mine:1"})
    s = setup(config=config, setting="kit")
    assert s.image(X86_64_MUSL).ref == "mine:1" and not s.image(X86_64_MUSL).kit
    env = {"CROSS_TARGET_X86_64_UNKNOWN_LINUX_MUSL_IMAGE": "env:2"}
    assert setup(config=config, environ=env).image(X86_64_MUSL).ref == "env:2"
    # and the kit sets no image variable of its own over the user's
    assert "CROSS_TARGET_X86_64_UNKNOWN_LINUX_MUSL_IMAGE" not in s.env(X86_64_MUSL, ())


def test_the_kits_image_is_musl_only_and_needs_debian():
    with pytest.raises(ConfigError, match="musl targets only"):
        setup(setting="kit").image(X86_64_GNU)
    with pytest.raises(ConfigError, match="mmdebstrap"):
        setup(setting="kit", kit_tag=None).image(X86_64_MUSL)
    # auto, where it cannot be built: cross's own images
    assert not setup(kit_tag=None).image(X86_64_MUSL).kit


# --- what cross is told ----------------------------------------------------------------------


def test_with_the_kits_image_cross_gets_stand_ins_and_builds_offline():
    env = setup().env(AARCH64_MUSL, ("JEMALLOC_SYS_WITH_LG_PAGE",))
    assert env["CROSS_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_IMAGE"] == RECIPE.tag
    assert env["CROSS_CUSTOM_TOOLCHAIN"] == "1"
    assert env["RUSTC"] == "/cache/cross/shims/bin/rustc"
    assert env["PATH"] == "/cache/cross/shims/bin:/usr/bin:/bin"  # its rustup first
    assert env["CARGO_NET_OFFLINE"] == "true"
    assert env["CROSS_BUILD_ENV_PASSTHROUGH"] == "JEMALLOC_SYS_WITH_LG_PAGE"
    assert "RUSTC_BOOTSTRAP" not in env


def test_crosss_own_images_get_none_of_the_kits_settings():
    env = setup(setting="cross").env(AARCH64_MUSL, ())
    assert env == {}


def test_build_std_in_cross_toml_sets_and_passes_rustc_bootstrap():
    """The trap: a passthrough of an unset RUSTC_BOOTSTRAP unsets the image's value, and the
    crate then fails on `-Z` flags; the kit sets it and names it for cross."""
    config = parse_cross_toml(
        {"build": {"build-std": True, "env": {"passthrough": ["RUSTC_BOOTSTRAP", "FOO"]}}},
        Path("Cross.toml"),
    )
    env = setup(config=config, environ={"CROSS_BUILD_ENV_PASSTHROUGH": "BAR"}).env(X86_64_MUSL, ())
    assert env["RUSTC_BOOTSTRAP"] == "1"
    assert env["CROSS_BUILD_ENV_PASSTHROUGH"] == "BAR RUSTC_BOOTSTRAP"
    assert "CARGO_NET_OFFLINE" not in env  # std's own dependencies may need fetching


def test_the_kits_passthrough_keeps_the_users_lists():
    """cross 0.2.5 takes CROSS_BUILD_ENV_PASSTHROUGH instead of Cross.toml's lists: when the kit
    sets it, the user's lists for that target are in it (and a variable they set wins)."""
    config = parse_cross_toml(
        {
            "build": {"env": {"passthrough": ["A"]}},
            "target": {AARCH64_MUSL.triple: {"env": {"passthrough": ["B"]}}},
        },
        Path("Cross.toml"),
    )
    on = setup(config=config)
    assert on.env(AARCH64_MUSL, ("SOURCE_DATE_EPOCH",))["CROSS_BUILD_ENV_PASSTHROUGH"] == (
        "A B SOURCE_DATE_EPOCH"
    )
    assert on.env(X86_64_MUSL, ("SOURCE_DATE_EPOCH",))["CROSS_BUILD_ENV_PASSTHROUGH"] == (
        "A SOURCE_DATE_EPOCH"
    )
    theirs = setup(config=config, environ={"CROSS_BUILD_ENV_PASSTHROUGH": "C"})
    assert theirs.env(X86_64_MUSL, ("D",))["CROSS_BUILD_ENV_PASSTHROUGH"] == "C D"


def test_cross_toml_is_read_as_cross_reads_it(tmp_path):
    (tmp_path / "Cross.toml").write_text(
        '[build]\npre-build = ["echo hi"]\n[build.env]\npassthrough = ["A"]\n'
        '[target.aarch64-unknown-linux-musl]\nimage = { name = "img:1" }\nbuild-std = true\n'
        '[target.aarch64-unknown-linux-musl.env]\npassthrough = ["B", "A"]\n'
        '[target.x86_64-unknown-linux-musl]\ndockerfile = "Dockerfile.x"\n'
    )
    c = read_cross_config(tmp_path, {})
    assert c.path == tmp_path / "Cross.toml" and c.pre_build
    assert c.images[AARCH64_MUSL.triple] == "img:1"
    assert "Dockerfile.x" in c.images[X86_64_MUSL.triple]
    assert c.passthrough == {"": ("A",), AARCH64_MUSL.triple: ("B", "A")}
    assert c.passthrough_for(AARCH64_MUSL) == ("A", "B")
    assert c.passthrough_for(X86_64_MUSL) == ("A",)
    assert c.wants_build_std(AARCH64_MUSL) and not c.wants_build_std(X86_64_MUSL)
    other = tmp_path / "elsewhere.toml"
    other.write_text('[target.x86_64-unknown-linux-musl]\nimage = "other:3"\n')
    elsewhere = read_cross_config(tmp_path, {"CROSS_CONFIG": str(other)})
    assert elsewhere.path == other and elsewhere.images == {X86_64_MUSL.triple: "other:3"}
    (tmp_path / "Cross.toml").write_text("[build\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_cross_config(tmp_path, {})


def test_cross_config_in_cargo_toml_counts_and_cross_toml_wins(tmp_path):
    (tmp_path / "Cargo.toml").write_text(
        '[package]\nname = "a"\nversion = "0.1.0"\n'
        '[package.metadata.cross.target.aarch64-unknown-linux-musl]\nimage = "meta:1"\n'
        '[package.metadata.cross.target.x86_64-unknown-linux-musl]\nimage = "meta:2"\n'
    )
    assert read_cross_config(tmp_path, {}).images[AARCH64_MUSL.triple] == "meta:1"
    (tmp_path / "Cross.toml").write_text('[target.x86_64-unknown-linux-musl]\nimage = "toml:2"\n')
    c = read_cross_config(tmp_path, {})
    assert c.images == {AARCH64_MUSL.triple: "meta:1", X86_64_MUSL.triple: "toml:2"}
    # the user's choice stands: the kit sets no image of its own for either target
    s = setup(config=c, setting="kit")
    assert not s.image(AARCH64_MUSL).kit and not s.image(X86_64_MUSL).kit


def test_the_rustup_stand_in_only_answers():
    text = rustup_shim("static-rust-kit-image", SHIPPING_TARGETS)
    assert '"toolchain list") echo "static-rust-kit-image"' in text
    assert "rust-std-aarch64-unknown-linux-musl (installed)" in text
    assert text.rstrip().endswith("exit 1")  # anything else: refused, nothing changed


def test_the_rustc_stand_in_names_the_image_toolchain_and_runs_the_real_one():
    text = rustc_shim(Path("/c/toolchains/static-rust-kit-image"), Path("/rt/bin/rustc"))
    assert 'echo "/c/toolchains/static-rust-kit-image"' in text
    assert 'exec "/rt/bin/rustc" "$@"' in text


def test_container_paths_map_to_the_host_target_dir():
    assert host_path(Path("/target/x/release/app"), Path("/w/t")) == Path("/w/t/x/release/app")
    assert host_path(Path("/elsewhere/app"), Path("/w/t")) == Path("/elsewhere/app")


# --- planning --------------------------------------------------------------------------------


def cross_plan(opts, allocator=SYSTEM, host=WITH_CROSS, backend="cross"):
    return plan_build(
        opts,
        AARCH64_MUSL,
        allocator,
        toolchains=(HOST_TC,),
        host=host,
        backend=backend,
        cross=lambda: setup(),
    )


def test_cross_plan_in_the_kits_image(opts):
    plan = cross_plan(opts, JEMALLOC)
    argv = plan.invocation.argv
    assert argv[:2] == ("cross", "build") and "+stable" not in argv
    assert not any("--sysroot" in a or a.startswith("-Z") for a in argv)
    assert any("link-self-contained=no" in a for a in argv)  # std built from source: zig's crt
    assert "--manifest-path" not in argv  # a host path; cross runs cargo in the mounted project
    env = plan.invocation.env
    assert env["JEMALLOC_SYS_WITH_LG_PAGE"] == "16"
    # the compilers in the container get the same C date stamp as on the host
    assert env["CROSS_BUILD_ENV_PASSTHROUGH"] == "SOURCE_DATE_EPOCH JEMALLOC_SYS_WITH_LG_PAGE"
    assert "RUSTC_BOOTSTRAP" not in env


def test_auto_falls_back_to_cross_where_no_host_toolchain_has_std(opts):
    plan = cross_plan(opts, backend="auto")
    assert plan.backend == "cross" and plan.request.std.std == "cross-image"
    no_cross = HostFacts(
        arch="x86_64", zig=True, cargo_zigbuild=True, cross=False, docker=True, cargo_auditable=True
    )
    with pytest.raises(ToolMissingError, match="can build std"):
        cross_plan(opts, host=no_cross, backend="auto")


def test_cross_not_installed_says_how_to_install_it(opts):
    no_cross = HostFacts(
        arch="x86_64", zig=True, cargo_zigbuild=True, cross=False, docker=True, cargo_auditable=True
    )
    with pytest.raises(ToolMissingError, match=r"cargo install cross --version 0\.2\.5 --locked"):
        cross_plan(opts, host=no_cross)


# --- the image's recipe ----------------------------------------------------------------------


def test_the_tag_is_a_digest_of_the_inputs():
    import dataclasses

    assert RECIPE.tag == dataclasses.replace(RECIPE).tag
    assert RECIPE.tag.startswith("static-rust-kit/cross:")
    newer = dataclasses.replace(RECIPE, zig_version="0.16.0")
    moved = dataclasses.replace(RECIPE, packages={**RECIPE.packages, "rustc-web": "1.97.0-1"})
    assert len({RECIPE.tag, newer.tag, moved.tag}) == 3


def test_sources_come_from_apts_debian_archives_for_this_release():
    listing = "\n".join(
        [
            "http://deb.debian.org/debian/ bookworm main Packages",
            "http://deb.debian.org/debian/ bookworm main DEP-11",
            "http://deb.debian.org/debian/ bookworm-updates main Packages",
            "http://deb.debian.org/debian-security/ bookworm-security main Packages",
            "http://deb.debian.org/debian/ bookworm contrib Packages",
            "https://deb.nodesource.com/node_20.x/ nodistro main Packages",
        ]
    )
    assert cross_image.parse_indextargets(listing, "bookworm") == (
        "deb http://deb.debian.org/debian bookworm main contrib",
        "deb http://deb.debian.org/debian bookworm-updates main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
    )


def test_image_environment_links_each_target_with_zig():
    env = cross_image.image_env(SHIPPING_TARGETS)
    assert "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-unknown-linux-musl-cc" in env
    assert "CC_x86_64_unknown_linux_musl=x86_64-unknown-linux-musl-cc" in env
    assert "ZIG_GLOBAL_CACHE_DIR=/target/.zig-cache" in env
    assert not any(e.startswith("RUSTC_BOOTSTRAP") for e in env)  # std is prebuilt


def test_std_is_built_offline_in_the_image_with_the_sysroot_recipe():
    script = cross_image.std_script(SHIPPING_TARGETS, "x86_64")
    assert "export CARGO_NET_OFFLINE=true" in script
    assert "-Zbuild-std=std,panic_unwind,panic_abort" in script
    assert "cp /tmp/kit-std/target/aarch64-unknown-linux-musl/release/deps/*.rlib" in script
    assert ".rmeta" not in script
    # the probe runs where it can: the host's own arch
    assert "x86_64-unknown-linux-musl/release/kit-std-probe" in script
    assert "aarch64-unknown-linux-musl/release/kit-std-probe" not in script
    assert 'directory = "/usr/lib/rustlib/src/rust/library/vendor"' in cross_image.VENDOR_CONFIG


def test_zig_keeps_linux_musl_headers_only():
    keep = cross_image.zig_header_dirs(SHIPPING_TARGETS)
    assert keep == {
        "any-linux-any",
        "generic-musl",
        "x86_64-linux-musl",
        "x86-linux-any",
        "aarch64-linux-musl",
        "aarch64-linux-any",
    }
