"""The container runtime: each replica is a podman container, driven through the CLI.

    podman run -d --init --name berth-<replica> --label berth.owner=<owner> ... image [cmd]

`--init` makes catatonit the container's PID 1, so a SIGTERM reaches the command (a python
server as PID 1 would ignore it). Each container carries the labels berth.owner,
berth.replica and berth.deployment: one `podman ps -a --filter label=berth.owner=<owner>`
sees them all, and a restarted server adopts the known ones and removes the rest. The
replica's `listening_port` is published on host loopback at a port of its own, so replicas
of one image can all listen on 8080. `StartedReplica.pid` is the container's init process
(catatonit) as the host sees it: `podman inspect`'s State.Pid, or its conmon's when the
container has already exited. Images are pulled first as the pull policy says (`pull.py`);
output is followed from podman's k8s-file log into Berth's log files (`logs.py`); how a
container ended, OOM kills included, is read as `exits.py` says. `podman run` runs in a
private directory per replica (`<run_dir>/containers/<replica>`), where conmon leaves its
`oom` file.
"""

from __future__ import annotations

import asyncio
import math
import shlex
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from berth.domain.units import format_size
from berth.runtime.base import (
    LaunchSpec,
    LogLine,
    LogPolicy,
    ProcessObservation,
    ReplicaStats,
    StartedReplica,
)
from berth.runtime.container.argv import (
    DEPLOYMENT_LABEL,
    OWNER_LABEL,
    REPLICA_LABEL,
    GpuHost,
    check_id,
    container_name,
    run_command,
    shown_command,
)
from berth.runtime.container.exits import exec_exit, kernel_logged_oom_kill
from berth.runtime.container.host import (
    Workdirs,
    detect_gpu_host,
    registry_host,
    remove_empty_cgroups,
)
from berth.runtime.container.logs import LogFollower
from berth.runtime.container.models import (
    InspectContainer,
    PsContainer,
    parse_inspect,
    parse_ps,
    parse_stats,
)
from berth.runtime.container.podman import Podman, PodmanError
from berth.runtime.container.pull import DEFAULT_PULL_TIMEOUT, ProgressCallback, ensure_image
from berth.runtime.logfiles import (
    LogKeeper,
    append_line,
    read_logs,
    read_policy,
)

_LOG_DRAIN_SECONDS = 2.0  # after a container exits, how long its last lines may take
_STATS_FORMAT = "{{json .ContainerStats}}"


@dataclass
class _Container:
    replica_id: str
    deployment_id: str
    name: str
    port: int | None
    pid: int
    command: str = "the image's command"  # as errors name it
    follower: LogFollower | None = None
    exit: ProcessObservation | None = None  # once seen exited
    cpu_sample: tuple[int, int] | None = None  # (CPU ns used, when read ns) at the last stats


class ContainerRuntime:
    name = "container"

    def __init__(
        self, logs_dir: Path, owner: str, *, run_dir: Path | None = None,
        podman: Podman | None = None, host: str = "127.0.0.1", network: str | None = None,
        cgroup_parent: str | None = None, log_max_size: str | None = "64m",
        insecure_registries: frozenset[str] = frozenset(),
        pull_timeout: float = DEFAULT_PULL_TIMEOUT,
    ) -> None:
        """`cgroup_parent`: where containers' cgroups go (podman's own default when None);
        `log_max_size`: podman's own log file per container is started afresh past this
        (Berth's copy keeps the lines, per the deployment's policy);
        `insecure_registries`: registry hosts pulled from without TLS (e.g. 127.0.0.1:5000)."""
        self.logs_dir = logs_dir.absolute()
        self.run_dir = (run_dir or logs_dir.parent / "run").absolute()
        self.owner = owner
        self.podman = podman or Podman()
        self.host = host
        self.network = network
        self.cgroup_parent = cgroup_parent
        self.log_max_size = log_max_size
        self.insecure_registries = insecure_registries
        self.pull_timeout = pull_timeout
        self._containers: dict[str, _Container] = {}
        self._workdirs = Workdirs(self.run_dir / "containers")
        self._gpu_host: GpuHost | None = None
        self._logs = LogKeeper()

    # -- lifecycle ---------------------------------------------------------------------

    async def ensure_image(self, launch: LaunchSpec,
                           on_progress: ProgressCallback | None = None) -> bool:
        """Make the launch's image present as its pull policy says; True when pulled.
        ImagePullFailed (auth / not_found / network / not_present / failed) when it cannot."""
        if not launch.image:
            raise ValueError("a container replica needs an image")
        return await ensure_image(
            self.podman, launch.image, launch.pull_policy, launch.registry_auth,
            auth_dir=self.run_dir / "pulls", on_progress=on_progress,
            tls_verify=registry_host(launch.image) not in self.insecure_registries,
            limit_s=self.pull_timeout)

    async def prepare(self, launch: LaunchSpec, on_progress: Callable[[str], None]) -> None:
        """The image pulled as the launch's pull policy says (ImagePullFailed if not)."""
        await self.ensure_image(launch, on_progress)

    async def start(self, launch: LaunchSpec,
                    on_progress: ProgressCallback | None = None) -> StartedReplica:
        rid = check_id("replica id", launch.replica_id)
        did = check_id("deployment id", launch.deployment_id)
        old = self._containers.get(rid)
        if old is not None:
            if old.exit is None and await self._running(old):
                raise ValueError(f"replica {rid!r} is already running")
            await self.forget(rid)
        gpu_host = await self._gpus() if launch.gpus else None
        port = self._allocate_port()
        command = run_command(launch, owner=self.owner, host_port=port, host_ip=self.host,
                              network=self.network, log_max_size=self.log_max_size,
                              cgroup_parent=self.cgroup_parent, gpu_host=gpu_host)
        await self.ensure_image(launch, on_progress)
        log_path = self.logs_dir / did / f"{rid}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if read_policy(log_path.parent).enabled:
            shown = shlex.join([launch.image or "", *launch.command])
            append_line(log_path, "berth", f"starting: {shown}")

        name = container_name(rid)
        workdir = await asyncio.to_thread(self._workdirs.fresh, rid)
        result = await self.podman.run(*command.args, check=False, extra_env=command.env,
                                       cwd=workdir)
        if result.returncode != 0 and "already in use" in result.error:
            await self._remove_leftover(name)
            result = await self.podman.run(*command.args, check=False, extra_env=command.env,
                                           cwd=workdir)
        found = await self._inspect(name)
        if found is None:
            raise PodmanError("run", result.error or "no container was made", result.returncode)
        container = _Container(rid, did, name, port, found.state.pid or found.state.conmon_pid,
                               shown_command(launch))
        self._containers[rid] = container
        container.follower = LogFollower(_log_source(found), log_path)
        container.follower.start()
        if result.returncode != 0:  # made, but it would not start
            container.exit = await self._exit_of(container, found, result.error)
        return StartedReplica(replica_id=rid, pid=container.pid, port=port, host=self.host)

    async def signal(self, replica_id: str, *, kill: bool) -> None:
        container = self._containers.get(replica_id)
        if container is not None:
            await self.podman.run("kill", "--signal", "KILL" if kill else "TERM",
                                  container.name, check=False)

    async def observe(self) -> dict[str, ProcessObservation]:
        if not self._containers:
            return {}
        listed = {c.labels.get(REPLICA_LABEL, ""): c for c in await self._ps()}
        observed: dict[str, ProcessObservation] = {}
        for rid, container in list(self._containers.items()):
            if container.exit is None:
                entry = listed.get(rid)
                if entry is None:  # removed behind our back
                    container.exit = ProcessObservation(rid, alive=False, pid=container.pid,
                                                        port=container.port)
                elif not entry.alive:
                    found = await self._inspect(container.name)
                    container.exit = (await self._exit_of(container, found, "")
                                      if found is not None else
                                      ProcessObservation(rid, alive=False, pid=container.pid,
                                                         port=container.port,
                                                         exit_code=entry.exit_code))
            observed[rid] = container.exit or ProcessObservation(
                rid, alive=True, pid=container.pid, port=container.port)
        return observed

    async def forget(self, replica_id: str) -> None:
        container = self._containers.pop(replica_id, None)
        if container is None:
            return
        await self._remove([container.name])
        if container.follower is not None:
            await container.follower.stop()
        await asyncio.to_thread(self._workdirs.remove, replica_id)

    async def shutdown(self, grace: float) -> None:
        names = {c.name for c in self._containers.values()}
        names |= {c.names[0] for c in await self._ps() if c.names}
        live = sorted(n for n in names if n)
        if live:
            await self.podman.run("stop", "--ignore", "--time", str(math.ceil(max(grace, 0))),
                                  *live, check=False, limit_s=grace + 30)
        await self.observe()  # exit codes and last lines, before the containers go
        await self._remove(live)
        for container in self._containers.values():
            if container.follower is not None:
                await container.follower.stop()
            await asyncio.to_thread(self._workdirs.remove, container.replica_id)
        if self.cgroup_parent:
            await asyncio.to_thread(remove_empty_cgroups, self.cgroup_parent)

    async def recover(self, known: dict[str, int | None]) -> None:
        strays: list[str] = []
        for entry in await self._ps():
            rid = entry.labels.get(REPLICA_LABEL, "")
            name = entry.names[0] if entry.names else entry.id
            did = entry.labels.get(DEPLOYMENT_LABEL, "")
            if rid in self._containers:
                continue
            if rid not in known or name != container_name(rid) or not _valid_id(did):
                strays.append(entry.id)
                continue
            found = await self._inspect(name)
            container = _Container(rid, did, name, known[rid] or entry.host_port(), entry.pid)
            self._containers[rid] = container
            path = self.logs_dir / did / f"{rid}.log"
            container.follower = LogFollower(_log_source(found), path)
            container.follower.start()  # it catches up on what was printed meanwhile
        await self._remove(strays)
        await asyncio.to_thread(self._workdirs.remove_all_but, set(self._containers))

    def exec_command(self, replica_id: str, argv: list[str]) -> list[str]:
        """The command that runs `argv` inside the replica's container (exec probes)."""
        container = self._containers.get(replica_id)
        if container is None:
            raise ValueError(f"replica {replica_id!r} is not a container of this runtime")
        return self.podman.argv("exec", container.name, *argv)

    # -- metrics and logs --------------------------------------------------------------

    async def stats(self, replica_id: str) -> ReplicaStats | None:
        container = self._containers.get(replica_id)
        if container is None or container.exit is not None:
            return None
        try:
            result = await self.podman.run("stats", "--no-stream", "--format", _STATS_FORMAT,
                                           container.name, check=False)
            samples = parse_stats(result.stdout) if result.returncode == 0 else []
        except (PodmanError, ValueError):
            return None
        if not samples:
            return None
        sample = samples[0]
        cpu = sample.cpu_percent
        previous, container.cpu_sample = container.cpu_sample, (sample.cpu_nano,
                                                                sample.system_nano)
        if previous is not None and sample.system_nano > previous[1]:
            cpu = 100.0 * (sample.cpu_nano - previous[0]) / (sample.system_nano - previous[1])
        return ReplicaStats(replica_id=replica_id, cpu_percent=max(cpu, 0.0),
                            memory_bytes=sample.mem_usage, processes=sample.pids)

    def logs(
        self, deployment_id: str, *, since: float | None = None, limit: int = 1000,
        replica_id: str | None = None,
    ) -> list[LogLine]:
        directory = self.logs_dir / check_id("deployment id", deployment_id)
        if replica_id is not None:
            replica_id = check_id("replica id", replica_id)
        return read_logs(directory, since=since, limit=limit, replica_id=replica_id)

    def purge_logs(self, deployment_id: str) -> None:
        shutil.rmtree(self.logs_dir / check_id("deployment id", deployment_id),
                      ignore_errors=True)
        self._logs.forget(deployment_id)

    def keep_logs(self, deployment_id: str, policy: LogPolicy) -> None:
        """Write the policy for the followers when it changes; prune the files no running
        follower writes (each prunes its own)."""
        self._logs.keep(deployment_id, self.logs_dir / check_id("deployment id", deployment_id),
                        policy, lambda: {rid for rid, c in self._containers.items()
                                         if c.follower is not None and c.follower.running})

    # -- internals ---------------------------------------------------------------------

    async def _ps(self) -> list[PsContainer]:
        result = await self.podman.run("ps", "--all", "--filter",
                                       f"label={OWNER_LABEL}={self.owner}", "--format", "json")
        return [c for c in parse_ps(result.stdout) if c.labels.get(OWNER_LABEL) == self.owner]

    async def _inspect(self, name: str) -> InspectContainer | None:
        result = await self.podman.run("container", "inspect", name, check=False)
        if result.returncode != 0:
            return None
        found = parse_inspect(result.stdout)
        return found[0] if found else None

    async def _running(self, container: _Container) -> bool:
        found = await self._inspect(container.name)
        return found is not None and found.state.alive

    async def _exit_of(self, container: _Container, found: InspectContainer,
                       run_error: str) -> ProcessObservation:
        """How it ended, once its last lines are in (the reason may be among them)."""
        follower = container.follower
        if follower is not None:
            follower.finish()
            await follower.wait(_LOG_DRAIN_SECONDS)
        state = found.state
        code, error, oom = state.exit_code, state.error or run_error, state.oom_killed
        if code != 0 and not oom:  # conmon's file, else the kernel's log (see exits.py)
            oom = (self._workdirs.path(container.replica_id) / "oom").exists() or (
                code == 137 and await asyncio.to_thread(kernel_logged_oom_kill, found.id))
        if code == 1 and follower is not None and follower.exec_error is not None:
            code, error = exec_exit(follower.exec_error, container.command)
        observed = ProcessObservation(
            container.replica_id, alive=False, pid=container.pid, port=container.port,
            exit_code=code, error="" if oom else error, oom_killed=oom,
            memory_limit_bytes=found.host_config.memory or None)
        if follower is not None and (oom or error):
            follower.note(oom_reason(observed) if oom else error)
        return observed

    async def _remove_leftover(self, name: str) -> None:
        """A container of an earlier run holds the name: removed if it is ours."""
        found = await self._inspect(name)
        if found is None:
            return
        if found.config.labels.get(OWNER_LABEL) != self.owner:
            raise PodmanError("run", f"a container named {name} exists and is not this "
                              "Berth installation's")
        await self._remove([name])

    async def _remove(self, names: list[str]) -> None:
        if names:
            await self.podman.run("rm", "--force", "--ignore", "--volumes", "--time", "0",
                                  *names, check=False)

    async def _gpus(self) -> GpuHost:
        """The host's CDI devices and /dev/nvidia* nodes, read once."""
        if self._gpu_host is None:
            self._gpu_host = await detect_gpu_host()
        return self._gpu_host

    def _allocate_port(self) -> int:
        taken = {c.port for c in self._containers.values()}
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((self.host, 0))
                port: int = sock.getsockname()[1]
            if port not in taken:
                return port
        raise RuntimeError("no free loopback port")


def _log_source(found: InspectContainer | None) -> Path | None:
    """Podman's log file for the container (k8s-file), if it has one."""
    if found is None or found.host_config.log_config.type not in ("k8s-file", ""):
        return None
    path = found.host_config.log_config.path
    return Path(path) if path else None


def _valid_id(value: str) -> bool:
    try:
        check_id("id", value)
    except ValueError:
        return False
    return True


def oom_reason(observed: ProcessObservation) -> str:
    """What an OOM kill is reported as: "OOMKilled: memory limit 64MiB"."""
    limit = observed.memory_limit_bytes
    return "OOMKilled: memory limit " + (format_size(limit) if limit else "unknown")
