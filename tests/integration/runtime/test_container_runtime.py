"""The container runtime against real podman, on the test image (localhost/berth-test/model).

Skipped, with the reason, where podman cannot run or the test image is not built; on CI
(env CI or BERTH_CI) that fails instead.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from berth.runtime.base import LaunchSpec, LogPolicy, Mount, ProcessObservation
from berth.runtime.container import ContainerRuntime, ImagePullFailed, Podman
from berth.runtime.container import runtime as runtime_module
from berth.runtime.container.host import remove_empty_cgroups

IMAGE = "localhost/berth-test/model:v1"
TIMEOUT = 30.0

MakeRuntime = Callable[[], ContainerRuntime]


@functools.cache
def podman_problem() -> str | None:
    """None when podman runs here and the test image is in its store, else why not."""
    if os.geteuid() != 0:
        return "Berth runs podman as root; these tests are not running as root"
    if shutil.which("podman") is None:
        return "podman is not installed"
    try:
        found = subprocess.run(["podman", "image", "exists", IMAGE], capture_output=True,
                               text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return "podman did not answer in 60 s"
    if found.returncode != 0:
        return (f"the test image {IMAGE} is not built (tests/containers/images.py) "
                f"{found.stderr.strip()[-300:]}")
    return None


@pytest.fixture(autouse=True)
def _needs_podman() -> None:
    problem = podman_problem()
    if problem is None:
        return
    if os.environ.get("CI") or os.environ.get("BERTH_CI"):
        pytest.fail(f"podman is needed on CI: {problem}", pytrace=False)
    pytest.skip(problem)


def cgroup_parent() -> str:
    """A child of this process's memory cgroup, as the server uses."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return path.rstrip("/") + "/berth-test"
    return "/berth-test"


@pytest.fixture
def owner() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def ours(owner: str) -> list[dict[str, object]]:
    out = subprocess.run(["podman", "ps", "-a", "--filter", f"label=berth.owner={owner}",
                          "--format", "json"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    return json.loads(out) if out.strip() else []


def inspect(name: str) -> dict[str, object]:
    out = subprocess.run(["podman", "container", "inspect", name], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    found: dict[str, object] = json.loads(out)[0]
    return found


@pytest.fixture
def make_runtime(tmp_path: Path, owner: str) -> Iterator[MakeRuntime]:
    made: list[ContainerRuntime] = []
    parent = cgroup_parent()

    def make() -> ContainerRuntime:
        runtime = ContainerRuntime(tmp_path / "logs", owner, run_dir=tmp_path / "run",
                                   podman=Podman(), cgroup_parent=parent)
        made.append(runtime)
        return runtime

    try:
        yield make
    finally:
        for runtime in made:
            asyncio.run(runtime.shutdown(1.0))
        left = ours(owner)
        if left:  # never leave containers behind, even when the test failed
            subprocess.run(["podman", "rm", "-f", "-t", "0", *(str(c["Id"]) for c in left)],
                           capture_output=True, timeout=60, check=False)
        remove_empty_cgroups(parent)
        assert left == []


def launch(rid: str, **changes: object) -> LaunchSpec:
    spec = LaunchSpec(rid, "d1", [], image=IMAGE)
    return replace(spec, **changes)  # type: ignore[arg-type]


async def run(argv: list[str]) -> tuple[int | None, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    return proc.returncode, out.decode()


async def wait_for(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_exit(runtime: ContainerRuntime, rid: str) -> ProcessObservation:
    async def exited() -> bool:
        return not (await runtime.observe())[rid].alive

    await wait_for(exited, f"{rid} to exit")
    return (await runtime.observe())[rid]


async def wait_ready(port: int) -> None:
    async with httpx.AsyncClient() as client:

        async def healthy() -> bool:
            try:
                return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(healthy, f"port {port} to answer")


async def wait_log(runtime: ContainerRuntime, rid: str, text: str) -> list[str]:
    def matches() -> list[str]:
        return [ln.line for ln in runtime.logs("d1", replica_id=rid) if text in ln.line]

    async def found() -> bool:
        return bool(matches())

    await wait_for(found, f"{text!r} in {rid}'s logs")
    return matches()


def test_two_replicas_of_one_image_listen_on_8080_with_their_limits(
    make_runtime: MakeRuntime, tmp_path: Path,
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "weights.txt").write_text("w1")

    async def scenario() -> None:
        runtime = make_runtime()
        spec = launch("r1", cpus=0.5, memory_bytes=128 * 2**20, pids_limit=64,
                      envs={"API_SECRET": "s3cret", "CUDA_VISIBLE_DEVICES": ""},
                      mounts=(Mount(str(models), "/models"),))
        one = await runtime.start(spec)
        two = await runtime.start(replace(spec, replica_id="r2"))
        assert one.port != two.port
        await wait_ready(one.port)
        await wait_ready(two.port)
        async with httpx.AsyncClient() as client:
            for started in (one, two):
                base = f"http://127.0.0.1:{started.port}"
                reply = await client.post(f"{base}/predict", json={"x": 1})
                assert reply.json()["echo"] == {"x": 1}
                env = (await client.get(f"{base}/env", params={"name": "API_SECRET"})).json()
                assert env["value"] == "s3cret"
                port = (await client.get(f"{base}/env", params={"name": "PORT"})).json()
                assert port["value"] == "8080"
                weights = await client.get(f"{base}/file", params={"path": "/models/weights.txt"})
                assert weights.json() == {"content": "w1"}

        observed = await runtime.observe()
        assert {rid: (o.alive, o.pid, o.port) for rid, o in observed.items()} == {
            "r1": (True, one.pid, one.port), "r2": (True, two.pid, two.port)}
        found = inspect("berth-r1")
        state, host = found["State"], found["HostConfig"]
        assert isinstance(state, dict) and isinstance(host, dict)
        assert state["Pid"] == one.pid
        assert (host["NanoCpus"], host["Memory"], host["PidsLimit"]) == (
            500_000_000, 128 * 2**20, 64)
        config = found["Config"]
        assert isinstance(config, dict)
        assert config["Labels"]["berth.replica"] == "r1"
        assert config["Labels"]["berth.deployment"] == "d1"
        assert "NVIDIA_VISIBLE_DEVICES=void" in config["Env"]

        stats = await runtime.stats("r1")
        assert stats is not None and 0 < stats.memory_bytes < 128 * 2**20
        assert stats.processes >= 2  # catatonit and the server
        again = await runtime.stats("r1")
        assert again is not None and again.cpu_percent >= 0

        probe = runtime.exec_command("r1", ["cat", "/models/weights.txt"])
        assert await run(probe) == (0, "w1")
        write = runtime.exec_command("r1", ["sh", "-c", "echo x > /models/new"])
        assert (await run(write))[0] != 0  # mounted read-only

        await runtime.forget("r2")
        assert list(await runtime.observe()) == ["r1"]
        assert [c["Names"] for c in ours(runtime.owner)] == [["berth-r1"]]

    asyncio.run(scenario())


def test_sigterm_reaches_the_server_through_init(make_runtime: MakeRuntime) -> None:
    async def scenario() -> None:
        runtime = make_runtime()
        started = await runtime.start(launch("r1"))
        await wait_ready(started.port)
        await runtime.signal("r1", kill=False)
        exited = await wait_exit(runtime, "r1")
        # 143: the server died of the SIGTERM itself (as PID 1 it would have ignored it)
        assert (exited.exit_code, exited.oom_killed, exited.error) == (143, False, "")
        assert await runtime.stats("r1") is None

    asyncio.run(scenario())


@pytest.mark.parametrize("evidence", ["any", "conmon's oom file"])
def test_going_over_the_memory_limit_is_observed_as_an_oom_kill(
    make_runtime: MakeRuntime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, evidence: str,
) -> None:
    if evidence != "any":  # without the kernel's log
        monkeypatch.setattr(runtime_module, "kernel_logged_oom_kill", lambda _id: False)
    monkeypatch.chdir(tmp_path)  # the server's directory: nothing may land in it

    async def scenario() -> None:
        runtime = make_runtime()
        started = await runtime.start(launch("r1", memory_bytes=64 * 2**20))
        await wait_ready(started.port)
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.TransportError):
                await client.post(f"http://127.0.0.1:{started.port}/alloc",
                                  params={"mb": "300"}, timeout=TIMEOUT)
        exited = await wait_exit(runtime, "r1")
        assert (exited.exit_code, exited.oom_killed) == (137, True)
        assert exited.memory_limit_bytes == 64 * 2**20 and exited.error == ""
        assert await wait_log(runtime, "r1", "OOMKilled: memory limit 64MiB")

        # a plain SIGKILL is not an OOM kill
        await runtime.start(launch("r2", memory_bytes=64 * 2**20))
        await runtime.signal("r2", kill=True)
        killed = await wait_exit(runtime, "r2")
        assert (killed.exit_code, killed.oom_killed) == (137, False)
        assert not (tmp_path / "oom").exists()

    asyncio.run(scenario())


LOG_SCRIPT = """
import sys, time
print("out-1", flush=True); time.sleep(0.05)
print("err-1", file=sys.stderr, flush=True); time.sleep(0.05)
print("out-2", flush=True)
sys.exit(3)
"""


def test_output_lands_in_logs_with_the_container_timestamps(make_runtime: MakeRuntime) -> None:
    async def scenario() -> None:
        runtime = make_runtime()
        began = time.time()
        await runtime.start(launch("r1", command=["python3", "-c", LOG_SCRIPT]))
        exited = await wait_exit(runtime, "r1")
        assert (exited.exit_code, exited.error) == (3, "")
        lines = runtime.logs("d1", replica_id="r1")
        assert lines[0].stream == "berth" and lines[0].line.startswith("starting: " + IMAGE)
        assert [(ln.stream, ln.line) for ln in lines[1:]] == [
            ("stdout", "out-1"), ("stderr", "err-1"), ("stdout", "out-2")]
        stamps = [ln.ts for ln in lines[1:]]
        assert stamps == sorted(stamps) and began - 5 < stamps[0] < time.time()
        assert stamps[1] - stamps[0] >= 0.04  # podman's stamps, not when Berth read them
        assert runtime.logs("d1", since=stamps[0]) == lines[2:]

        runtime.keep_logs("d1", LogPolicy(enabled=False))  # lines are discarded now
        await runtime.start(launch("r2", command=["python3", "-c", LOG_SCRIPT]))
        assert (await wait_exit(runtime, "r2")).exit_code == 3
        assert runtime.logs("d1", replica_id="r2") == []
        runtime.purge_logs("d1")
        assert runtime.logs("d1") == []

    asyncio.run(scenario())


def test_a_command_missing_from_the_image_exits_127_with_the_reason(
    make_runtime: MakeRuntime,
) -> None:
    async def scenario() -> None:
        runtime = make_runtime()
        await runtime.start(launch("r1", command=["berth-no-such-command", "--flag"]))
        exited = await wait_exit(runtime, "r1")
        assert exited.exit_code == 127
        assert exited.error == "command not found: 'berth-no-such-command'"
        assert ("berth", exited.error) in [(ln.stream, ln.line) for ln in runtime.logs("d1")]

    asyncio.run(scenario())


def test_recover_adopts_known_containers_and_removes_strays(
    make_runtime: MakeRuntime, owner: str,
) -> None:
    async def scenario() -> None:
        before = make_runtime()
        kept = await before.start(launch("keep"))
        await before.start(launch("stray"))
        await wait_ready(kept.port)
        await wait_log(before, "keep", "listening on 8080")

        after = make_runtime()  # a restarted server: same owner, same directories
        await after.recover({"keep": kept.port})
        observed = await after.observe()
        assert list(observed) == ["keep"]
        assert (observed["keep"].alive, observed["keep"].pid, observed["keep"].port) == (
            True, kept.pid, kept.port)
        assert [c["Names"] for c in ours(owner)] == [["berth-keep"]]

        async with httpx.AsyncClient() as client:  # the adopted one's log is followed
            await client.get(f"http://127.0.0.1:{kept.port}/env", params={"name": "after"})
        await wait_log(after, "keep", "GET /env?name=after")
        assert len([ln for ln in after.logs("d1", replica_id="keep")
                    if "listening on 8080" in ln.line]) == 1  # nothing recorded twice
        stats = await after.stats("keep")
        assert stats is not None and stats.memory_bytes > 0

        await after.signal("keep", kill=False)
        assert (await wait_exit(after, "keep")).exit_code == 143

    asyncio.run(scenario())


def test_a_container_left_by_an_earlier_run_or_removed_elsewhere(
    make_runtime: MakeRuntime, owner: str,
) -> None:
    async def scenario() -> None:
        first = make_runtime()
        old = await first.start(launch("r1"))
        second = make_runtime()  # knows nothing of it (no recover)
        new = await second.start(launch("r1"))  # the name is ours: the old one goes
        assert new.pid != old.pid
        assert [c["Names"] for c in ours(owner)] == [["berth-r1"]]
        await wait_ready(new.port)

        assert (await run(["podman", "rm", "-f", "-t", "0", "berth-r1"]))[0] == 0
        lost = (await second.observe())["r1"]
        assert (lost.alive, lost.exit_code, lost.error) == (False, None, "")

    asyncio.run(scenario())


def test_shutdown_stops_and_removes_every_container(
    make_runtime: MakeRuntime, owner: str,
) -> None:
    async def scenario() -> None:
        runtime = make_runtime()
        for rid in ("r1", "r2"):
            await runtime.start(launch(rid))
        assert len(ours(owner)) == 2
        await runtime.shutdown(5.0)
        assert ours(owner) == []
        observed = await runtime.observe()
        assert {rid: o.alive for rid, o in observed.items()} == {"r1": False, "r2": False}

    asyncio.run(scenario())


def test_pull_failures_are_named(make_runtime: MakeRuntime) -> None:
    async def scenario() -> None:
        runtime = make_runtime()
        with pytest.raises(ImagePullFailed) as never:
            await runtime.start(launch("r1", image="localhost/berth-test/absent:v0",
                                       pull_policy="Never"))
        assert never.value.kind == "not_present"
        progress: list[str] = []
        with pytest.raises(ImagePullFailed) as refused:  # nothing listens on port 9
            await runtime.start(launch("r1", image="127.0.0.1:9/berth/absent:v0",
                                       registry_auth=("127.0.0.1:9", "u", "pw-123")),
                                on_progress=progress.append)
        assert refused.value.kind == "network", refused.value
        assert "pw-123" not in str(refused.value) + "".join(progress)
        assert list((runtime.run_dir / "pulls").iterdir()) == []  # the auth file is gone
        assert await runtime.observe() == {}

    asyncio.run(scenario())
