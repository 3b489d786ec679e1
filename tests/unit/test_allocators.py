from __future__ import annotations

import pytest

from kit.core.allocators import JEMALLOC, KNOWN, MIMALLOC, SYSTEM, detect, parse_allocators
from kit.core.errors import ConfigError


def test_all_expands_in_fixed_order():
    assert parse_allocators("all") == KNOWN
    assert parse_allocators(["mimalloc", "system"]) == (MIMALLOC, SYSTEM)


def test_unknown_allocator_suggests():
    with pytest.raises(ConfigError) as e:
        parse_allocators("jemaloc")
    assert "Perhaps you meant 'jemalloc'" in e.value.message


def test_detect_by_signature_bytes():
    assert detect(b"\x00<jemalloc>: Error in malloc()\x00") == {"jemalloc"}
    assert detect(b"xx MIMALLOC_VERBOSE yy") == {"mimalloc"}
    assert detect(b"plain musl binary") == set()
    assert JEMALLOC.feature == "jemalloc" and SYSTEM.feature is None
