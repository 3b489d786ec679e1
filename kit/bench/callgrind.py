"""Instruction counts under callgrind (valgrind): the benchmark's noise-free figure.

A command workload may declare a fixed-work form of itself (`instructions`, see
kit.core.workloads.InstructionCount); for the scenarios it names, every variant's binary runs
that form once under `valgrind --tool=callgrind`, and the total of instructions executed
("Ir") is read from callgrind's output file. A count is not a time: the same binary, arguments
and environment give the same total whatever else the machine is doing, so one run per cell
suffices and two variants compare without an interval. It is exact only for single-thread
work: callgrind runs a program's threads one at a time, in an order that can vary.

The binaries are native (the benchmark builds for the host's architecture), so valgrind runs
them directly. Without valgrind the phase is skipped and results.json says why: throughput
and the rest of the benchmark do not depend on it.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kit.bench.command import stdin_of
from kit.bench.plan import Scenario
from kit.bench.variants import Variant
from kit.core import console, runner
from kit.core.errors import BenchError

TOOL = "valgrind"
# callgrind's output file ends with "totals: <Ir>" (and "summary: <Ir>" in its header)
_TOTALS = re.compile(r"^(?:totals|summary):\s*(\d+)", re.MULTILINE)
SHOWN = 500  # characters of output quoted in an error


def version() -> str | None:
    """valgrind's version ("3.19.0"), or None when it is not on PATH."""
    if runner.which(TOOL) is None:
        return None
    return runner.capture([TOOL, "--version"]).removeprefix("valgrind-")


def argv(binary: Path, args: Sequence[str], out_file: Path) -> list[str]:
    """The callgrind command for one count (no per-line or per-instruction dumps: the totals)."""
    return [
        TOOL,
        "--tool=callgrind",
        f"--callgrind-out-file={out_file}",
        "--dump-line=no",
        "--compress-strings=no",
        str(binary),
        *args,
    ]


def parse_total(text: str) -> int:
    """The instructions executed, from a callgrind output file's `totals:` line."""
    totals = _TOTALS.findall(text)
    if not totals:
        raise BenchError("callgrind's output file has no totals line.")
    return int(totals[-1])


def counted(scenarios: Sequence[Scenario]) -> list[Scenario]:
    return [s for s in scenarios if s.count is not None]


def count(variant: Variant, scenario: Scenario) -> dict[str, Any]:
    """One count: the variant's binary running the scenario's fixed-work argv under callgrind,
    in the same scrubbed environment as its measured runs."""
    spec = scenario.count
    assert spec is not None  # only counted scenarios get here
    what = f"callgrind {variant.key} {scenario.key}"
    with tempfile.TemporaryDirectory(prefix="kit-callgrind-") as tmp:
        out_file = Path(tmp) / "callgrind.out"
        log = Path(tmp) / "valgrind.log"
        with stdin_of(spec) as stdin, log.open("wb") as err:
            proc = runner.spawn(
                argv(variant.binary, spec.argv, out_file),
                env=variant.env,
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=err.fileno(),
                inherit_env=False,
            )
            code = _wait(proc, spec.timeout_s, what)
        if code != 0 or not out_file.is_file():
            tail = log.read_text(errors="replace").strip()[-SHOWN:]
            raise BenchError(f"{what} exited with code {code}.", hint=tail or "It printed nothing.")
        total = parse_total(out_file.read_text(errors="replace"))
    return {
        "variant": variant.key,
        "scenario": scenario.key,
        "argv": list(spec.argv),
        "instructions": total,
    }


def run_counts(variants: Sequence[Variant], scenarios: Sequence[Scenario]) -> dict[str, Any]:
    """Every counted scenario for every variant: results.json's `instructions` section."""
    targets = counted(scenarios)
    if not targets:
        return {"skipped": "no workload declares an instruction count (instructions.argv)"}
    found = version()
    if found is None:
        console.warn(f"instruction counts skipped: {TOOL} is not on PATH")
        return {"skipped": f"{TOOL} is not on PATH ({runner.INSTALL_HINTS[TOOL]})"}
    cells = []
    with console.steps("instruction counts (callgrind)", len(targets) * len(variants)) as steps:
        for scenario in targets:
            for variant in variants:
                label = f"{variant.key} {scenario.key}"
                steps.start(label)
                cells.append(count(variant, scenario))
                steps.done(label)
    return {"tool": "callgrind", "version": found, "event": "Ir", "cells": cells}


def _wait(proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> int:
    """The exit code; the process killed and reaped if it outlives its timeout (or Ctrl-C)."""
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} did not finish within {timeout_s:.0f}s (timeout-s).") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
