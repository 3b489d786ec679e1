from __future__ import annotations

import pytest

from kit.core.errors import ConfigError
from kit.core.targets import (
    AARCH64_MUSL,
    X86_64_GNU,
    X86_64_MUSL,
    host_arch,
    parse_target,
    parse_targets,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("x86_64", X86_64_MUSL),
        ("amd64", X86_64_MUSL),
        ("AMD64", X86_64_MUSL),
        ("aarch64", AARCH64_MUSL),
        ("arm64", AARCH64_MUSL),
        ("aarch64-unknown-linux-musl", AARCH64_MUSL),
        ("x86_64-unknown-linux-gnu", X86_64_GNU),
    ],
)
def test_aliases_and_triples_parse_to_one_value(name, expected):
    assert parse_target(name) is expected


def test_all_is_both_shipping_arches_in_index_order():
    assert parse_targets("all") == (X86_64_MUSL, AARCH64_MUSL)


def test_comma_list_keeps_order_and_drops_duplicates():
    assert parse_targets("arm64,x86_64,aarch64") == (AARCH64_MUSL, X86_64_MUSL)


def test_every_spelling_other_tools_need():
    t = AARCH64_MUSL
    assert t.triple == "aarch64-unknown-linux-musl"
    assert t.oci_platform == "linux/arm64/v8"
    assert t.elf_machine == "EM_AARCH64"
    assert t.qemu == "qemu-aarch64-static"
    assert X86_64_MUSL.oci_platform == "linux/amd64"


def test_unknown_target_lists_valid_names_and_suggests():
    with pytest.raises(ConfigError) as e:
        parse_target("aarch46")
    assert "Perhaps you meant 'aarch64'" in e.value.message
    assert "x86_64" in e.value.hint and "all" in e.value.hint


def test_empty_target_list_is_an_error():
    with pytest.raises(ConfigError):
        parse_targets(" , ")


def test_jemalloc_page_size_only_for_aarch64():
    assert AARCH64_MUSL.allocator_env("jemalloc") == {"JEMALLOC_SYS_WITH_LG_PAGE": "16"}
    assert AARCH64_MUSL.allocator_env("mimalloc") == {}
    assert X86_64_MUSL.allocator_env("jemalloc") == {}


def test_host_arch_normalises_machine_names():
    assert host_arch("amd64") == "x86_64"
    assert host_arch("arm64") == "aarch64"
    assert host_arch("x86_64") == "x86_64"
