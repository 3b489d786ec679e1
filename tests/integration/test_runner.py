"""The one command runner, on real processes: streaming, exit codes, timeouts that stop the
whole process group, a missing program, and dry mode."""

from __future__ import annotations

import os
import time

import pytest

from kit.core import runner
from kit.core.errors import CommandFailedError, ToolMissingError


def test_lines_arrive_in_order_on_their_stream_and_are_kept():
    seen: list[tuple[str, str]] = []
    done = runner.run(
        ["sh", "-c", "echo one; echo two >&2; echo three"],
        on_line=lambda stream, line: seen.append((stream, line)),
    )
    # two pipes: the order within each stream is kept, not the interleaving between them
    assert [line for s, line in seen if s == "stdout"] == ["one", "three"]
    assert [line for s, line in seen if s == "stderr"] == ["two"]
    assert done.stdout == "one\nthree" and done.stderr == "two" and done.returncode == 0


def test_the_environment_and_working_directory_reach_the_child(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_RUNNER_PROBE", "from-os-environ")  # set after plumbum was imported
    done = runner.run(
        ["sh", "-c", 'echo "$KIT_RUNNER_PROBE $EXTRA $(pwd)"'], env={"EXTRA": "x"}, cwd=tmp_path
    )
    assert done.stdout == f"from-os-environ x {tmp_path}"


def test_an_exit_code_not_accepted_is_a_typed_error_with_the_output():
    with pytest.raises(CommandFailedError) as e:
        runner.run(["sh", "-c", "echo broken >&2; exit 3"], what="the probe")
    assert e.value.returncode == 3 and "broken" in e.value.output
    assert "the probe failed with exit code 3" in e.value.message
    assert runner.run(["sh", "-c", "exit 3"], ok=(0, 3)).returncode == 3


def test_a_timeout_stops_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    started = time.monotonic()
    with pytest.raises(CommandFailedError, match="did not finish within 1s"):
        runner.run(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], timeout=1)
    assert time.monotonic() - started < 20
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"the grandchild {grandchild} outlived the timeout")


def test_a_missing_program_says_how_to_install_it():
    with pytest.raises(ToolMissingError) as e:
        runner.run(["qemu-aarch64-static-not-here", "--version"])
    assert "not found on PATH" in e.value.message


def test_dry_mode_prints_and_starts_nothing(tmp_path, capsys):
    marker = tmp_path / "ran"
    runner.set_dry(True)
    try:
        done = runner.run(["touch", str(marker)])
    finally:
        runner.set_dry(False)
    assert done.dry and not marker.exists()
    assert "dry run, not started" in capsys.readouterr().err


# --- background processes: runner.background ---------------------------------------------------


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_a_background_process_and_its_children_never_outlive_the_block(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    script = f"sleep 60 & echo $! > {pidfile}; echo started; echo oops >&2; wait"
    leader = 0
    with (
        pytest.raises(RuntimeError, match="the caller failed"),
        runner.background(["sh", "-c", script]) as proc,
    ):
        deadline = time.monotonic() + 5
        while not pidfile.exists() or "oops" not in proc.output():
            assert time.monotonic() < deadline, "the script did not start"
            time.sleep(0.05)
        leader = proc.pid
        assert proc.poll() is None
        assert "--- stdout ---\nstarted" in proc.output()
        assert "--- stderr ---\noops" in proc.output()
        raise RuntimeError("the caller failed")
    assert _gone(leader) and _gone(int(pidfile.read_text()))


def test_a_background_process_gets_the_signal_and_its_exit_code_is_read():
    trap = "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done"
    with runner.background(["sh", "-c", trap], env={"UNUSED": "1"}) as proc:
        deadline = time.monotonic() + 5
        while "ready" not in proc.stdout():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert proc.wait(0.2) is None  # still running: None, not an exception
        proc.send_signal(15)
        assert proc.wait(5) == 7
        assert "got TERM" in proc.stdout()
        proc.send_signal(15)  # to a process that has exited: nothing happens
