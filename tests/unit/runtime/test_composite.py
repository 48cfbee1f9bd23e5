"""CompositeRuntime: a replica lives in the runtime that started (or adopted) it."""

from __future__ import annotations

import asyncio

from tests.fakes.runtime import FakeRuntime

from berth.runtime.base import LaunchSpec
from berth.runtime.composite import CompositeRuntime


def test_each_call_goes_to_the_runtime_holding_the_replica() -> None:
    processes, containers = FakeRuntime(), FakeRuntime()
    both = CompositeRuntime(processes, containers)

    async def run() -> None:
        await both.start(LaunchSpec("p1", "d1", ["echo"]))
        await both.start(LaunchSpec("c1", "d1", [], image="localhost/model:v1"))
        assert set(processes.procs) == {"p1"} and set(containers.procs) == {"c1"}
        assert set(await both.observe()) == {"p1", "c1"}
        await both.signal("c1", kill=True)
        assert containers.procs["c1"].signals and not processes.procs["p1"].signals
        await both.forget("p1")
        assert "p1" not in processes.procs and "c1" in containers.procs
        assert set(await both.observe()) == {"c1"}

    asyncio.run(run())
    assert both.name == "fake+fake"
