"""Replica log files: the log policy file, pruning by age, and the shim following both."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tests.unit.controller.test_loop import SPEC, World

from berth.runtime.base import LogPolicy
from berth.runtime.logfiles import (
    POLICY_FILE,
    LogWriter,
    prune,
    prune_every,
    read_logs,
    read_policy,
    write_policy,
)
from berth.runtime.process import ProcessRuntime


def lines(path: Path, stamps: list[float]) -> None:
    with path.open("a", encoding="utf-8") as f:
        for ts in stamps:
            f.write(json.dumps({"ts": ts, "stream": "stdout", "line": f"at {ts}"}) + "\n")


def stamps(path: Path) -> list[float]:
    return [json.loads(raw)["ts"] for raw in path.read_text().splitlines()
            if raw.startswith("{")]


@pytest.mark.parametrize("cutoff, kept", [
    (0, list(range(1, 11))), (1, list(range(1, 11))), (5.5, [6, 7, 8, 9, 10]),
    (10, [10]), (11, []),
])
def test_prune_keeps_the_lines_at_or_after_the_cutoff(tmp_path: Path, cutoff: float,
                                                      kept: list[int]) -> None:
    path = tmp_path / "r1.log"
    lines(path, [float(i) for i in range(1, 11)])
    prune(path, cutoff)
    assert stamps(path) == kept
    prune(tmp_path / "missing.log", 5)  # nothing to do


def test_prune_skips_garbage_lines_and_keeps_order(tmp_path: Path) -> None:
    path = tmp_path / "r1.log"
    lines(path, [1, 2])
    with path.open("a") as f:
        f.write("not json\n")
    lines(path, [3, 4])
    prune(path, 3)
    assert stamps(path) == [3, 4]


def test_policy_round_trip_and_default(tmp_path: Path) -> None:
    assert read_policy(tmp_path) == LogPolicy()
    write_policy(tmp_path / "d1", LogPolicy(False, 60))
    assert read_policy(tmp_path / "d1") == LogPolicy(False, 60)
    (tmp_path / POLICY_FILE).write_text("[1]")
    assert read_policy(tmp_path) == LogPolicy()
    assert [prune_every(LogPolicy(retention_seconds=s)) for s in (1, 100, 10**6)] == [
        1.0, 10.0, 60.0]


def test_the_shim_discards_lines_while_logging_is_off(tmp_path: Path) -> None:
    path = tmp_path / "r1.log"
    write_policy(tmp_path, LogPolicy(enabled=False))
    writer = LogWriter(str(path))
    writer.write("stdout", "dropped")
    write_policy(tmp_path, LogPolicy(enabled=True))
    writer._next_check = 0  # as if a second had passed
    writer.write("stdout", "kept")
    writer.close()
    assert [ln.line for ln in read_logs(tmp_path, since=None, limit=10)] == ["kept"]


def test_the_shim_prunes_its_own_file_to_the_retention_period(tmp_path: Path) -> None:
    path = tmp_path / "r1.log"
    now = time.time()
    lines(path, [now - 500, now - 200, now - 5])
    write_policy(tmp_path, LogPolicy(retention_seconds=100))
    writer = LogWriter(str(path))  # reads the policy and prunes at once
    writer.write("stdout", "new")
    writer.close()
    assert [ln.line for ln in read_logs(tmp_path, since=None, limit=10)] == [
        f"at {now - 5}", "new"]


def test_the_runtime_writes_the_policy_and_prunes_files_no_shim_writes(tmp_path: Path) -> None:
    runtime = ProcessRuntime(tmp_path / "run", tmp_path / "logs", owner="t")
    directory = tmp_path / "logs" / "d1"
    directory.mkdir(parents=True)
    now = time.time()
    lines(directory / "gone.log", [now - 500, now - 5])
    runtime.keep_logs("d1", LogPolicy())
    assert read_policy(directory) == LogPolicy() and len(stamps(directory / "gone.log")) == 2
    runtime.keep_logs("d1", LogPolicy(retention_seconds=100))
    assert read_policy(directory) == LogPolicy(retention_seconds=100)
    assert stamps(directory / "gone.log") == [now - 5]


def test_the_controller_hands_the_spec_logging_to_the_runtime_without_a_restart(
        tmp_path: Path) -> None:
    world = World(tmp_path)
    try:
        world.svc.create("p", SPEC)
        world.ticks(3)
        d = world.svc.get("p", "echo")
        assert world.runtime.log_policies[d.id] == LogPolicy()
        started = list(world.runtime.started)
        world.svc.patch("p", "echo", {"logging": {"enabled": False, "retention_period": 60}})
        world.ticks(3)
        assert world.runtime.log_policies[d.id] == LogPolicy(False, 60)
        assert world.runtime.started == started  # no replica was replaced
    finally:
        world.store.close()
