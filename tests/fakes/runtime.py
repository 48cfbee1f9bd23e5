"""In-memory Runtime and prober fakes: state per instance, no processes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from berth.domain.records import Deployment, Replica
from berth.probes.tracker import ProbeVerdict
from berth.runtime.base import (
    LaunchSpec,
    LogLine,
    LogPolicy,
    ProcessObservation,
    ReplicaStats,
    StartedReplica,
)


@dataclass
class FakeProcess:
    launch: LaunchSpec
    pid: int
    port: int
    alive: bool = True
    exit_code: int | None = None
    signals: list[str] = field(default_factory=list)


class FakeRuntime:
    name = "fake"

    def __init__(self) -> None:
        self.procs: dict[str, FakeProcess] = {}
        self.started: list[LaunchSpec] = []
        self.prepared: list[LaunchSpec] = []
        self.pull_lines: list[str] = []  # progress `prepare` reports
        self.pull_gate: asyncio.Event | None = None  # set: the pull finishes
        self.pull_error: Exception | None = None
        self.exit_on_term = True
        self.log_policies: dict[str, LogPolicy] = {}
        self._ids = itertools.count(1000)

    async def recover(self, known: dict[str, int | None]) -> None:
        for rid in list(self.procs):
            if rid not in known:
                self.procs[rid].alive = False
                del self.procs[rid]

    async def prepare(self, launch: LaunchSpec, on_progress: Callable[[str], None]) -> None:
        self.prepared.append(launch)
        for line in self.pull_lines:
            on_progress(line)
        if self.pull_gate is not None:
            await self.pull_gate.wait()
        if self.pull_error is not None:
            raise self.pull_error

    async def start(self, launch: LaunchSpec) -> StartedReplica:
        pid = next(self._ids)
        self.procs[launch.replica_id] = FakeProcess(launch, pid, pid + 20000)
        self.started.append(launch)
        return StartedReplica(launch.replica_id, pid, pid + 20000)

    async def signal(self, replica_id: str, *, kill: bool) -> None:
        proc = self.procs.get(replica_id)
        if proc is None:
            return
        proc.signals.append("KILL" if kill else "TERM")
        if kill or self.exit_on_term:
            proc.alive, proc.exit_code = False, 137 if kill else 0

    def crash(self, replica_id: str, code: int = 1) -> None:
        self.procs[replica_id].alive = False
        self.procs[replica_id].exit_code = code

    async def observe(self) -> dict[str, ProcessObservation]:
        return {rid: ProcessObservation(rid, p.alive, p.pid, p.port, p.exit_code)
                for rid, p in self.procs.items()}

    async def forget(self, replica_id: str) -> None:
        self.procs.pop(replica_id, None)

    async def stats(self, replica_id: str) -> ReplicaStats | None:
        return ReplicaStats(replica_id, 0.0, 1, 1) if replica_id in self.procs else None

    def logs(self, deployment_id: str, *, since: float | None = None, limit: int = 1000,
             replica_id: str | None = None) -> list[LogLine]:
        return []

    def purge_logs(self, deployment_id: str) -> None:
        return None

    def keep_logs(self, deployment_id: str, policy: LogPolicy) -> None:
        self.log_policies[deployment_id] = policy

    async def shutdown(self, grace: float) -> None:
        self.procs.clear()

    def alive(self) -> list[str]:
        return sorted(rid for rid, p in self.procs.items() if p.alive)


class FakeProber:
    """A prober whose verdict the test sets."""

    def __init__(self, verdicts: dict[str, ProbeVerdict], replica_id: str) -> None:
        self.verdicts = verdicts
        self.replica_id = replica_id

    def verdict(self) -> ProbeVerdict:
        return self.verdicts.get(self.replica_id, ProbeVerdict(started=True, ready=True))

    def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def fake_probers(verdicts: dict[str, ProbeVerdict]):  # type: ignore[no-untyped-def]
    def factory(_d: Deployment, r: Replica) -> FakeProber:
        return FakeProber(verdicts, r.id)
    return factory
