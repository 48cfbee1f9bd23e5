"""Two runtimes behind one `Runtime`: the process runtime for catalog images and commands,
the container runtime for images (`LaunchSpec.image` set). Each replica lives in exactly
one; calls about a replica go to the runtime that holds it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from berth.runtime.base import (
    LaunchSpec,
    LogLine,
    LogPolicy,
    ProcessObservation,
    ReplicaStats,
    Runtime,
    StartedReplica,
)


class CompositeRuntime:
    def __init__(self, processes: Runtime, containers: Runtime) -> None:
        self.processes, self.containers = processes, containers
        self.name = f"{processes.name}+{containers.name}"
        self._owner: dict[str, Runtime] = {}  # replica id -> the runtime holding it

    def _of(self, replica_id: str) -> list[Runtime]:
        owner = self._owner.get(replica_id)
        return [owner] if owner is not None else [self.processes, self.containers]

    async def recover(self, known: dict[str, int | None]) -> None:
        # Each adopts its own and stops its strays; a replica id is known to both, and only
        # the runtime that finds it running adopts it.
        await asyncio.gather(self.processes.recover(known), self.containers.recover(known))
        await self.observe()

    async def prepare(self, launch: LaunchSpec, on_progress: Callable[[str], None]) -> None:
        runtime = self.containers if launch.image is not None else self.processes
        await runtime.prepare(launch, on_progress)

    async def start(self, launch: LaunchSpec) -> StartedReplica:
        runtime = self.containers if launch.image is not None else self.processes
        self._owner[launch.replica_id] = runtime
        return await runtime.start(launch)

    async def signal(self, replica_id: str, *, kill: bool) -> None:
        for runtime in self._of(replica_id):
            await runtime.signal(replica_id, kill=kill)

    async def observe(self) -> dict[str, ProcessObservation]:
        procs, ctrs = await asyncio.gather(self.processes.observe(), self.containers.observe())
        for rid in procs:
            self._owner.setdefault(rid, self.processes)
        for rid in ctrs:
            self._owner.setdefault(rid, self.containers)
        return {**procs, **ctrs}

    async def forget(self, replica_id: str) -> None:
        for runtime in self._of(replica_id):
            await runtime.forget(replica_id)
        self._owner.pop(replica_id, None)

    async def stats(self, replica_id: str) -> ReplicaStats | None:
        for runtime in self._of(replica_id):
            found = await runtime.stats(replica_id)
            if found is not None:
                return found
        return None

    def logs(self, deployment_id: str, *, since: float | None = None, limit: int = 1000,
             replica_id: str | None = None) -> list[LogLine]:
        lines = [*self.processes.logs(deployment_id, since=since, limit=limit,
                                      replica_id=replica_id),
                 *self.containers.logs(deployment_id, since=since, limit=limit,
                                       replica_id=replica_id)]
        unique = sorted(set(lines), key=lambda ln: (ln.ts, ln.replica_id))
        return unique[-limit:] if since is None else unique[:limit]

    def purge_logs(self, deployment_id: str) -> None:
        self.processes.purge_logs(deployment_id)
        self.containers.purge_logs(deployment_id)

    def keep_logs(self, deployment_id: str, policy: LogPolicy) -> None:
        self.processes.keep_logs(deployment_id, policy)
        self.containers.keep_logs(deployment_id, policy)

    async def shutdown(self, grace: float) -> None:
        await asyncio.gather(self.processes.shutdown(grace), self.containers.shutdown(grace))
