"""Versioned records: an old, foreign, newer or malformed file is a clear exit-2 error naming the
file and the versions, never a KeyError; and the one policy for the allocator to ship."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from invoke.exceptions import Exit

from kit.bench.winner import Winner, shipping_allocator
from kit.build.record import BuildRecord, read_build_record, write_build_record
from kit.core.boundary import guard
from kit.core.options import resolve_options
from kit.core.paths import Paths
from kit.core.records import RecordError, read_optional, read_record, write_record

BASELINE = Path(__file__).resolve().parents[2] / "bench" / "baseline.json"


def build_record(**changes: object) -> BuildRecord:
    data = {
        "name": "app",
        "path": "x86_64-unknown-linux-musl/system/app",
        "triple": "x86_64-unknown-linux-musl",
        "arch": "x86_64",
        "oci_platform": "linux/amd64",
        "allocator": "system",
        "allocator_linked": "system",
        "allocator_route": "libc",
        "backend": "zigbuild",
        "toolchain": {"name": "debian-web", "rustc": "rustc 1.96.0", "cargo": "1.96.0"},
        "zig": "0.15.2",
        "cargo_zigbuild": "0.24.0",
        "libc": {"name": "musl", "version": "1.2.5", "origin": "zig", "malloc": "mallocng"},
        "std": "build-std",
        "profile": "release",
        "command": "cargo zigbuild",
        "sha256": "0" * 64,
        "size": 1,
        "unstripped_size": 1,
        "debug": None,
        "duration_s": 1.0,
        "built_at": "2026-01-01T00:00:00+00:00",
        "gates": [{"name": "architecture", "passed": True, "detail": "EM_X86_64"}],
        "elf": "static-pie linked",
        "machine": "EM_X86_64",
        "smoke": {"argv": ["app", "--version"], "emulator": None, "output": "", "report": {}},
    }
    data.update(changes)
    return BuildRecord.model_validate(data)


def test_a_build_record_round_trips_through_its_file(tmp_path):
    binary = tmp_path / "app"
    record = build_record()
    write_build_record(binary, record)
    on_disk = json.loads((tmp_path / "app.json").read_text())
    assert on_disk["kind"] == BuildRecord.KIND and on_disk["schema_version"] == BuildRecord.VERSION
    assert read_build_record(binary) == record


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ({"schema": 1, "name": "app"}, ["older kit", "schema 1", "version 3"]),
        ({"kind": "something-else", "schema_version": 2}, ["not a build record", "something-else"]),
        ({"kind": BuildRecord.KIND, "schema_version": 9}, ["schema version 9", "reads version 3"]),
        ({"kind": BuildRecord.KIND, "schema_version": 3, "name": 3}, ["not a valid build record"]),
        ([1, 2], ["not a build record", "list"]),
    ],
)
def test_a_bad_record_file_is_a_clear_error_naming_file_and_versions(tmp_path, content, needles):
    path = tmp_path / "app.json"
    path.write_text(json.dumps(content))
    with pytest.raises(RecordError) as e:
        read_record(BuildRecord, path)
    assert str(path) in e.value.message
    for needle in needles:
        assert needle in e.value.message


def test_a_bad_record_exits_2_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "app.json"
    path.write_text('{"schema": 1}')
    with pytest.raises(Exit) as e, guard():
        read_record(BuildRecord, path)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "older kit" in err and "Traceback" not in err


def test_missing_and_unparsable_files(tmp_path):
    assert read_optional(BuildRecord, tmp_path / "none.json") is None
    with pytest.raises(RecordError, match="does not exist"):
        read_record(BuildRecord, tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RecordError, match="is not JSON"):
        read_record(BuildRecord, tmp_path / "bad.json")


def test_the_committed_baseline_is_a_current_winner_with_a_relative_run_path():
    winner = read_record(Winner, BASELINE)
    assert not Path(winner.run).is_absolute()


@pytest.fixture
def opts(tmp_path):
    return resolve_options(tmp_path, environ={})


def test_the_flag_wins_over_any_winner(opts):
    assert shipping_allocator(opts, "mimalloc").allocator.name == "mimalloc"


def test_no_winner_ships_the_first_configured_allocator_and_says_so(opts, capsys):
    choice = shipping_allocator(opts, None)
    assert choice.allocator.name == opts.allocators[0]
    assert "fallback" in choice.source
    assert "no bench winner" in capsys.readouterr().err


def test_a_quick_winner_is_shipped_with_a_warning(opts, capsys):
    winner = read_record(Winner, BASELINE).model_copy(update={"mode": "quick"})
    write_record(Paths.of(opts).winner, winner)
    choice = shipping_allocator(opts, None)
    assert choice.allocator.name == winner.allocator and "quick" in choice.source
    assert "quick run" in capsys.readouterr().err


def test_a_corrupt_winner_is_an_error_not_a_silent_fallback(opts):
    Paths.of(opts).winner.parent.mkdir(parents=True)
    Paths.of(opts).winner.write_text('{"allocator": "jemalloc"}')
    with pytest.raises(RecordError):
        shipping_allocator(opts, None)


def test_committed_files_only_read_the_baseline_not_the_local_winner(opts):
    baseline = read_record(Winner, BASELINE)
    local = baseline.model_copy(update={"allocator": "mimalloc"})
    write_record(Paths.of(opts).winner, local)  # a local run's winner, never committed
    assert shipping_allocator(opts, None).allocator.name == "mimalloc"
    # no baseline in this project: the first configured, whatever the local winner says
    assert shipping_allocator(opts, None, committed=True).source.startswith("fallback")
    write_record(
        opts.path(opts.bench_baseline), baseline.model_copy(update={"allocator": "system"})
    )
    choice = shipping_allocator(opts, None, committed=True)
    assert choice.allocator.name == "system" and choice.source.startswith("committed baseline")
