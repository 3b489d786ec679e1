from __future__ import annotations

import pytest

from kit.build.elf import allocator_gate, audit_gate, read_elf, require, static_gates
from kit.core.errors import GateError
from kit.core.targets import AARCH64_MUSL, X86_64_MUSL


def _failed(results):
    return {r.name for r in results if not r.passed}


def test_static_binary_of_the_right_arch_passes(elf_samples):
    info = read_elf(elf_samples["x86_64-static"])
    assert info.machine == "EM_X86_64"
    assert info.is_static and info.interpreter is None and info.needed == ()
    assert _failed(static_gates(info, X86_64_MUSL)) == set()


def test_dynamic_binary_fails_with_interpreter_and_needed(elf_samples):
    info = read_elf(elf_samples["x86_64-dynamic"])
    assert not info.is_static
    assert info.interpreter and "ld-linux" in info.interpreter
    assert any(n.startswith("libc.so") for n in info.needed)
    results = static_gates(info, X86_64_MUSL)
    assert _failed(results) == {"no-interpreter", "no-needed"}
    with pytest.raises(GateError) as e:
        require(results, "hello")
    assert "PT_INTERP" in e.value.message and "DT_NEEDED" in e.value.message


def test_foreign_arch_binary_fails_the_architecture_gate(elf_samples):
    info = read_elf(elf_samples["aarch64-static"])
    assert info.machine == "EM_AARCH64"
    assert _failed(static_gates(info, AARCH64_MUSL)) == set()
    assert _failed(static_gates(info, X86_64_MUSL)) == {"architecture"}


def test_a_c_program_links_no_special_allocator(elf_samples):
    info = read_elf(elf_samples["x86_64-static"])
    assert allocator_gate(info, "system").passed
    gate = allocator_gate(info, "mimalloc")
    assert not gate.passed and "found none" in gate.detail


def test_not_an_elf_file(tmp_path):
    p = tmp_path / "script.sh"
    p.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(GateError, match="not an ELF file"):
        read_elf(p)


def test_missing_file(tmp_path):
    with pytest.raises(GateError, match="does not exist"):
        read_elf(tmp_path / "nope")


def test_allocator_signature_found_in_a_real_file(elf_samples, tmp_path):
    # The same ELF with a jemalloc message string appended: detection reads the file's bytes.
    data = elf_samples["x86_64-static"].read_bytes() + b"\0<jemalloc>: invalid conf\0"
    p = tmp_path / "with-jemalloc"
    p.write_bytes(data)
    info = read_elf(p)
    assert allocator_gate(info, "jemalloc").passed
    assert not allocator_gate(info, "system").passed
    assert not allocator_gate(info, "mimalloc").passed


def test_what_strip_removes_is_what_is_kept_beside_the_binary():
    from kit.build.strip import is_debug_info

    kept = [".debug_info", ".debug_line", ".zdebug_str", ".symtab"]
    shipped = [".text", ".rodata", ".debug_gdb_scripts", ".gnu_debuglink", ".strtab"]
    assert all(is_debug_info(n) for n in kept)
    assert not any(is_debug_info(n) for n in shipped)


def test_a_binary_with_a_symbol_table_has_something_to_strip(elf_samples):
    from kit.build.strip import strippable_sections

    assert ".symtab" in strippable_sections(elf_samples["x86_64-static"])


def _with_deps(info, data: bytes | None):
    import dataclasses

    return dataclasses.replace(info, dep_list=data)


def test_the_audit_gate_reads_cargo_auditables_dependency_list(elf_samples):
    import json
    import zlib

    info = read_elf(elf_samples["x86_64-static"])
    assert info.dep_list is None  # a C program: no .dep-v0
    missing = audit_gate(info)
    assert not missing.passed and missing.detail == "no .dep-v0 section"
    packages = [
        {"name": "app", "version": "0.1.0", "source": "local", "dependencies": [1], "root": True},
        {"name": "itoa", "version": "1.0.15", "source": "crates.io"},
    ]
    good = audit_gate(_with_deps(info, zlib.compress(json.dumps({"packages": packages}).encode())))
    assert good.passed and good.detail == ".dep-v0: 2 packages, root app"
    no_root = zlib.compress(json.dumps({"packages": packages[1:]}).encode())
    assert "no root package" in audit_gate(_with_deps(info, no_root)).detail
    assert "not a dependency list" in audit_gate(_with_deps(info, b"not zlib")).detail
