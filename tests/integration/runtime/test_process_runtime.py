"""The process runtime against real processes on loopback."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from berth.runtime.base import LaunchSpec, ProcessObservation, Runtime
from berth.runtime.process import ProcessRuntime

ECHO = [sys.executable, "-m", "berth.catalog.echo"]
TIMEOUT = 15.0

MakeRuntime = Callable[[], ProcessRuntime]


@pytest.fixture
def owner() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def make_runtime(tmp_path: Path, owner: str) -> Iterator[MakeRuntime]:
    made: list[ProcessRuntime] = []

    def make() -> ProcessRuntime:
        runtime = ProcessRuntime(tmp_path / "run", tmp_path / "logs", owner)
        made.append(runtime)
        return runtime

    try:
        yield make
    finally:
        for runtime in made:
            asyncio.run(runtime.shutdown(1.0))
        # nothing this test started may outlive it
        assert _wait_sync(lambda: not live_processes(owner)), live_processes(owner)


def python(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", script, *args]


def live_processes(owner: str, replica_id: str | None = None) -> list[int]:
    pids = []
    for proc in psutil.process_iter(["environ", "status"]):
        env = proc.info["environ"]
        if not env or env.get("BERTH_OWNER") != owner:
            continue
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if replica_id is None or env.get("BERTH_REPLICA_ID") == replica_id:
            pids.append(proc.pid)
    return pids


def pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_sync(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


async def wait_for(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_exit(runtime: Runtime, replica_id: str) -> ProcessObservation:
    async def exited() -> bool:
        return not (await runtime.observe())[replica_id].alive

    await wait_for(exited, f"{replica_id} to exit")
    return (await runtime.observe())[replica_id]


async def wait_ready(port: int) -> None:
    async with httpx.AsyncClient() as client:

        async def healthy() -> bool:
            try:
                return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(healthy, f"port {port} to answer")


async def wait_log(runtime: Runtime, deployment: str, text: str) -> str:
    """The first line the command printed that starts with `text`."""

    def matches() -> list[str]:
        return [line.line for line in runtime.logs(deployment)
                if line.stream != "berth" and line.line.startswith(text)]

    async def found() -> bool:
        return bool(matches())

    await wait_for(found, f"{text!r} in the logs")
    return matches()[0]


def test_echo_replica_serves_and_stops_on_sigterm(make_runtime: MakeRuntime) -> None:
    async def scenario() -> None:
        runtime = make_runtime()
        started = await runtime.start(LaunchSpec("r1", "d1", ECHO))
        await wait_ready(started.port)
        async with httpx.AsyncClient() as client:
            reply = await client.post(f"http://127.0.0.1:{started.port}/predict", json={"x": 1})
        assert reply.json() == {"echo": {"x": 1}, "replica": "r1"}

        observed = (await runtime.observe())["r1"]
        assert (observed.alive, observed.pid, observed.port) == (True, started.pid, started.port)
        stats = await runtime.stats("r1")
        assert stats is not None and stats.memory_bytes > 0 and stats.processes >= 2
        await wait_log(runtime, "d1", f"echo listening on http://127.0.0.1:{started.port} (r1)")

        await runtime.signal("r1", kill=False)
        exited = await wait_exit(runtime, "r1")
        assert (exited.exit_code, exited.error) == (0, "")
        assert await runtime.stats("r1") is None
        await runtime.forget("r1")
        assert await runtime.observe() == {}

    asyncio.run(scenario())


ENV_SCRIPT = """
import os, sys
e = os.environ
print(e["FOO"], e["PORT"], e["BERTH_REPLICA_ID"], e["BERTH_DEPLOYMENT_ID"],
      e["CUDA_VISIBLE_DEVICES"], "BERTH_SERVER_SECRET" in e, sys.argv[1])
"""


def test_envs_port_and_gpus_reach_the_command(
    make_runtime: MakeRuntime, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BERTH_SERVER_SECRET", "not for replicas")

    async def scenario() -> None:
        runtime = make_runtime()
        launch = LaunchSpec("r1", "d1", python(ENV_SCRIPT, "--port=${PORT}"),
                            envs={"FOO": "bar"}, gpus=(0, 2))
        started = await runtime.start(launch)
        assert (await wait_exit(runtime, "r1")).exit_code == 0
        port = started.port
        assert f"bar {port} r1 d1 0,2 False --port={port}" in [
            line.line for line in runtime.logs("d1")]

    asyncio.run(scenario())


LOG_SCRIPT = """
import sys, time
print("out-1", flush=True); time.sleep(0.05)
print("err-1", file=sys.stderr, flush=True); time.sleep(0.05)
print("out-2", flush=True)
print("x" * 20000, flush=True)
sys.exit(3)
"""


def test_output_lands_in_logs_with_streams_and_exit_code(make_runtime: MakeRuntime) -> None:
    async def scenario() -> None:
        runtime = make_runtime()
        await runtime.start(LaunchSpec("r1", "d1", python(LOG_SCRIPT)))
        await runtime.start(LaunchSpec("r2", "d1", python("print('other')")))
        assert (await wait_exit(runtime, "r1")).exit_code == 3
        assert (await wait_exit(runtime, "r2")).exit_code == 0

        mine = runtime.logs("d1", replica_id="r1")
        assert mine[0].stream == "berth" and mine[0].line.startswith("starting: ")
        assert [(line.stream, line.line) for line in mine[1:4]] == [
            ("stdout", "out-1"), ("stderr", "err-1"), ("stdout", "out-2")]
        assert len(mine[4].line) == 16 * 1024  # long lines are capped
        assert {line.replica_id for line in mine} == {"r1"}

        merged = runtime.logs("d1")
        assert [line.ts for line in merged] == sorted(line.ts for line in merged)
        assert {line.replica_id for line in merged} == {"r1", "r2"}
        assert runtime.logs("d1", limit=2) == merged[-2:]
        assert runtime.logs("d1", since=merged[2].ts) == merged[3:]
        assert runtime.logs("d1", since=merged[2].ts, limit=1) == merged[3:4]

        runtime.purge_logs("d1")
        assert runtime.logs("d1") == []

    asyncio.run(scenario())


def test_sigterm_death_reports_shell_style_code(make_runtime: MakeRuntime) -> None:
    async def scenario() -> None:
        runtime = make_runtime()
        await runtime.start(LaunchSpec("r1", "d1", python(
            "import time; print('up', flush=True); time.sleep(60)")))
        await wait_log(runtime, "d1", "up")
        await runtime.signal("r1", kill=False)
        assert (await wait_exit(runtime, "r1")).exit_code == 128 + 15

    asyncio.run(scenario())


def test_missing_command_exits_127_with_reason(make_runtime: MakeRuntime) -> None:
    async def scenario() -> None:
        runtime = make_runtime()
        await runtime.start(LaunchSpec("r1", "d1", ["berth-no-such-command", "--flag"]))
        exited = await wait_exit(runtime, "r1")
        assert exited.exit_code == 127
        assert "berth-no-such-command" in exited.error
        assert ("berth", exited.error) in [(ln.stream, ln.line) for ln in runtime.logs("d1")]

    asyncio.run(scenario())


SLEEPER = python("import time; print('up', flush=True); time.sleep(60)")


def test_recover_adopts_known_replicas_and_kills_orphans(
    make_runtime: MakeRuntime, owner: str,
) -> None:
    async def scenario() -> None:
        before = make_runtime()
        kept = await before.start(LaunchSpec("keep", "d1", ECHO))
        orphan = await before.start(LaunchSpec("orphan", "d1", SLEEPER))
        assert kept.port != orphan.port
        await wait_ready(kept.port)
        await wait_log(before, "d1", "up")
        assert live_processes(owner, "orphan")

        after = make_runtime()  # a restarted server: same owner, same directories
        await after.recover({"keep": kept.port})
        observed = await after.observe()
        assert list(observed) == ["keep"]
        assert (observed["keep"].alive, observed["keep"].pid) == (True, kept.pid)
        assert observed["keep"].port == kept.port
        assert live_processes(owner, "orphan") == []
        stats = await after.stats("keep")
        assert stats is not None and stats.memory_bytes > 0

        await after.signal("keep", kill=False)
        assert (await wait_exit(after, "keep")).exit_code == 0

    asyncio.run(scenario())


GRANDPARENT = """
import signal, subprocess, sys
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
print("grandchild", child.pid, flush=True)
if sys.argv[1] == "stay":
    signal.pause()
"""


def test_shutdown_kills_the_whole_group(make_runtime: MakeRuntime, owner: str) -> None:
    async def scenario() -> None:
        runtime = make_runtime()
        started = await runtime.start(LaunchSpec("r1", "d1", python(GRANDPARENT, "stay")))
        grandchild = int((await wait_log(runtime, "d1", "grandchild")).split()[1])
        assert pid_alive(grandchild)
        await runtime.shutdown(0.3)  # the grandchild ignores SIGTERM: it takes a SIGKILL
        assert not (await runtime.observe())["r1"].alive
        assert _wait_sync(lambda: not pid_alive(grandchild) and not pid_alive(started.pid))
        assert _wait_sync(lambda: not live_processes(owner))

    asyncio.run(scenario())


@pytest.mark.parametrize("how", ["forget", "kill"])
def test_members_left_behind_by_the_command_are_killed(
    make_runtime: MakeRuntime, how: str,
) -> None:
    async def scenario() -> None:
        runtime = make_runtime()
        await runtime.start(LaunchSpec("r1", "d1", python(GRANDPARENT, "leave")))
        grandchild = int((await wait_log(runtime, "d1", "grandchild")).split()[1])
        assert (await wait_exit(runtime, "r1")).exit_code == 0
        assert pid_alive(grandchild)  # the shim is gone, its group is not
        if how == "forget":
            await runtime.forget("r1")
        else:
            await runtime.signal("r1", kill=True)
        assert _wait_sync(lambda: not pid_alive(grandchild))

    asyncio.run(scenario())


def _write_log(path: Path, start: float, count: int, step: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for i in range(count):
            f.write(json.dumps({"ts": start + i * step, "stream": "stdout",
                                "line": f"{path.stem} line {i} " + "y" * 60}) + "\n")
            if i % 1000 == 0:
                f.write("not json\n")
        f.write('{"ts": 1e12, "stream": "stdout", "li')  # a line being written


def test_logs_read_big_files_quickly(tmp_path: Path) -> None:
    runtime = ProcessRuntime(tmp_path / "run", tmp_path / "logs", "unused")
    count = 40_000  # two files of ~4 MB
    _write_log(tmp_path / "logs" / "d1" / "a.log", 1000.0, count, 1.0)
    _write_log(tmp_path / "logs" / "d1" / "b.log", 1000.5, count, 1.0)

    began = time.perf_counter()
    tail = runtime.logs("d1", limit=100)
    after = runtime.logs("d1", since=1000.0 + 30_000, limit=3)
    only_b = runtime.logs("d1", since=1000.0, limit=2, replica_id="b")
    elapsed = time.perf_counter() - began

    assert elapsed < 0.5
    assert len(tail) == 100 and tail[-1].line.startswith(f"b line {count - 1} ")
    assert [line.ts for line in tail] == sorted(line.ts for line in tail)
    assert [(line.replica_id, line.ts) for line in after] == [
        ("b", 31000.5), ("a", 31001.0), ("b", 31001.5)]
    assert [line.ts for line in only_b] == [1000.5, 1001.5]
    assert runtime.logs("d1", since=1e9) == []
    assert runtime.logs("nothing-here") == []
    with pytest.raises(ValueError):
        runtime.logs("../etc")


CWD_SCRIPT = "import os; open('mine.txt', 'w').write('x'); print('cwd', os.getcwd(), flush=True)"


def test_each_replica_runs_in_a_private_directory_of_its_own(
    make_runtime: MakeRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    (server_dir / "admin-token").write_text("secret")
    monkeypatch.chdir(server_dir)  # the server's own directory, which replicas must not share

    async def scenario() -> None:
        runtime = make_runtime()
        await runtime.start(LaunchSpec("r1", "d1", python(CWD_SCRIPT)))
        await runtime.start(LaunchSpec("r2", "d1", python(CWD_SCRIPT)))
        assert (await wait_exit(runtime, "r1")).exit_code == 0
        assert (await wait_exit(runtime, "r2")).exit_code == 0
        first = Path((await wait_log(runtime, "d1", "cwd ")).split(" ", 1)[1])
        cwds = {Path(line.line.split(" ", 1)[1]) for line in runtime.logs("d1")
                if line.line.startswith("cwd ")}
        assert cwds == {tmp_path / "replicas" / "r1", tmp_path / "replicas" / "r2"}
        assert first in cwds and server_dir not in cwds
        assert not (server_dir / "mine.txt").exists()
        for rid in ("r1", "r2"):
            workdir = tmp_path / "replicas" / rid
            assert (workdir / "mine.txt").read_text() == "x"
            assert workdir.stat().st_mode & 0o777 == 0o700
            log = tmp_path / "logs" / "d1" / f"{rid}.log"
            assert log.stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "replicas").stat().st_mode & 0o777 == 0o700

        # a restart begins afresh; forget removes it
        await runtime.start(LaunchSpec("r1", "d1", python("import time; time.sleep(60)")))
        assert not (tmp_path / "replicas" / "r1" / "mine.txt").exists()
        await runtime.forget("r1")
        await runtime.forget("r2")
        assert list((tmp_path / "replicas").iterdir()) == []

    asyncio.run(scenario())


def test_recover_removes_directories_of_replicas_it_does_not_adopt(
    make_runtime: MakeRuntime, tmp_path: Path,
) -> None:
    async def scenario() -> None:
        before = make_runtime()
        kept = await before.start(LaunchSpec("keep", "d1", ECHO))
        await before.start(LaunchSpec("orphan", "d1", SLEEPER))
        await wait_ready(kept.port)
        (tmp_path / "replicas" / "gone-long-ago").mkdir()
        after = make_runtime()
        await after.recover({"keep": kept.port})
        assert [p.name for p in (tmp_path / "replicas").iterdir()] == ["keep"]
        await after.shutdown(1.0)  # stops them all: nothing of theirs is kept
        assert list((tmp_path / "replicas").iterdir()) == []

    asyncio.run(scenario())
