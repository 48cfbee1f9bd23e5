"""The embedded runtime: each replica is a local process group led by a shim.

    berth server ──Popen(start_new_session)──► shim (group leader) ──► command ──► ...

The shim (`berth.runtime.shim`) records the command's output and exit; the group is what
gets signalled, so children the command spawns go with it. Every process carries
`BERTH_OWNER` in its environment, which lets a restarted server find its replicas again.

Each replica runs in a working directory of its own, `<work_dir>/<replica id>` (0700), made
empty on start and removed with the replica: never the server's own directory, whose files
(the admin token, the database) a command such as `python -m http.server` would serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal as signals
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from berth.runtime.base import (
    LaunchSpec,
    LogLine,
    LogPolicy,
    ProcessObservation,
    ReplicaStats,
    StartedReplica,
)
from berth.runtime.logfiles import (
    LogKeeper,
    append_line,
    read_logs,
    read_policy,
)

SHIM_MODULE = "berth.runtime.shim"
_POLL = 0.02
_REAP_SECONDS = 5.0


@dataclass
class _Replica:
    replica_id: str
    deployment_id: str
    pid: int  # the shim's; it leads the process group, so pgid == pid
    port: int | None
    exit_path: Path
    popen: subprocess.Popen[bytes] | None = None  # set for our own children
    process: psutil.Process | None = None  # identity (pid + create time) and stats root
    exit: tuple[int | None, str] | None = None  # (code, error) once seen exited
    stat_procs: dict[int, psutil.Process] = field(default_factory=dict)


class ProcessRuntime:
    name = "process"

    def __init__(self, run_dir: Path, logs_dir: Path, owner: str, host: str = "127.0.0.1",
                 work_dir: Path | None = None):
        # Absolute: the shim and the replica run elsewhere than the server.
        self.run_dir = run_dir.absolute()
        self.logs_dir = logs_dir.absolute()
        self.work_dir = (work_dir or run_dir.parent / "replicas").absolute()
        self.owner = owner
        self.host = host
        self._replicas: dict[str, _Replica] = {}
        self._unreaped: list[subprocess.Popen[bytes]] = []
        self._logs = LogKeeper()

    # -- lifecycle ---------------------------------------------------------------------

    async def prepare(self, launch: LaunchSpec, on_progress: Callable[[str], None]) -> None:
        """Nothing to get ready: the command is on this machine."""

    async def start(self, launch: LaunchSpec) -> StartedReplica:
        rid, did = _component(launch.replica_id), _component(launch.deployment_id)
        if not launch.command:
            raise ValueError("command must not be empty")
        old = self._replicas.get(rid)
        if old is not None:
            if self._alive(old):
                raise ValueError(f"replica {rid!r} is already running")
            await self.forget(rid)
        workdir = await asyncio.to_thread(self._fresh_workdir, rid)
        port = self._allocate_port()
        command = [arg.replace("${PORT}", str(port)) for arg in launch.command]
        env = _inherited_env()
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(launch.envs)
        env.update(
            PORT=str(port), BERTH_REPLICA_ID=rid, BERTH_DEPLOYMENT_ID=did,
            BERTH_OWNER=self.owner,
        )
        if launch.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in launch.gpus)

        log_path = self.logs_dir / did / f"{rid}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        exit_path = self.run_dir / f"{rid}.exit"
        exit_path.unlink(missing_ok=True)
        if read_policy(log_path.parent).enabled:
            append_line(log_path, "berth", f"starting: {shlex.join(command)}")
        popen = subprocess.Popen(  # noqa: ASYNC220 - a fork/exec, not a wait
            [sys.executable, "-m", SHIM_MODULE, "--log", str(log_path),
             "--exit-file", str(exit_path), "--", *command],
            env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )
        replica = _Replica(rid, did, popen.pid, port, exit_path, popen=popen)
        with contextlib.suppress(psutil.Error):  # if already gone, observe reports it
            replica.process = psutil.Process(popen.pid)
        self._replicas[rid] = replica
        return StartedReplica(replica_id=rid, pid=popen.pid, port=port, host=self.host)

    async def signal(self, replica_id: str, *, kill: bool) -> None:
        replica = self._replicas.get(replica_id)
        if replica is not None:
            _killpg(replica.pid, signals.SIGKILL if kill else signals.SIGTERM)

    async def observe(self) -> dict[str, ProcessObservation]:
        self._reap_stragglers()
        observed: dict[str, ProcessObservation] = {}
        for rid, replica in self._replicas.items():
            alive = self._alive(replica)
            code, error = replica.exit or (None, "")
            observed[rid] = ProcessObservation(
                replica_id=rid, alive=alive, pid=replica.pid, port=replica.port,
                exit_code=code, error=error,
            )
        return observed

    async def forget(self, replica_id: str) -> None:
        replica = self._replicas.pop(replica_id, None)
        if replica is not None:
            _killpg(replica.pid, signals.SIGKILL)  # also members left behind by the shim
            await self._wait_gone([replica], _REAP_SECONDS)
            if replica.popen is not None and replica.popen.poll() is None:
                self._unreaped.append(replica.popen)
            replica.exit_path.unlink(missing_ok=True)
        await asyncio.to_thread(self._remove_workdir, replica_id)

    async def shutdown(self, grace: float) -> None:
        replicas = list(self._replicas.values())
        live = [r for r in replicas if self._alive(r)]
        for replica in live:
            _killpg(replica.pid, signals.SIGTERM)
        await self._wait_gone(live, grace)
        for replica in replicas:  # exited shims may have left members behind
            _killpg(replica.pid, signals.SIGKILL)
        await self._wait_gone(replicas, _REAP_SECONDS)
        self._reap_stragglers()
        for replica in replicas:
            await asyncio.to_thread(self._remove_workdir, replica.replica_id)

    async def recover(self, known: dict[str, int | None]) -> None:
        leaders: dict[str, tuple[psutil.Process, dict[str, str]]] = {}
        others: list[tuple[str, int, int]] = []  # (replica id, pid, pgid)
        me, my_group = os.getpid(), os.getpgrp()
        for proc in psutil.process_iter(["environ", "cmdline"]):
            env: dict[str, str] | None = proc.info.get("environ")
            if not env or env.get("BERTH_OWNER") != self.owner:
                continue
            rid = env.get("BERTH_REPLICA_ID", "")
            try:
                pgid = os.getpgid(proc.pid)
            except OSError:
                continue
            if proc.pid == me or pgid in (my_group, 0, 1) or rid in self._replicas:
                continue
            cmdline = proc.info.get("cmdline") or []
            if proc.pid == pgid and SHIM_MODULE in cmdline:
                leaders[rid] = (proc, env)
            else:
                others.append((rid, proc.pid, pgid))

        doomed: list[psutil.Process] = []
        for rid, (proc, env) in leaders.items():
            if rid in known:
                self._adopt(rid, proc, env, known[rid])
            else:
                _killpg(proc.pid, signals.SIGKILL)
                doomed.append(proc)
        for rid, pid, pgid in others:
            if rid in known and rid in leaders:
                continue  # a member of an adopted group
            _killpg(pgid, signals.SIGKILL)
            _kill(pid, signals.SIGKILL)
            with contextlib.suppress(psutil.Error):
                doomed.append(psutil.Process(pid))
        await _wait_until(lambda: not any(_running(p) for p in doomed), _REAP_SECONDS)
        await asyncio.to_thread(self._remove_stray_workdirs)

    def _adopt(
        self, rid: str, proc: psutil.Process, env: dict[str, str], port: int | None,
    ) -> None:
        if port is None:
            try:
                port = int(env.get("PORT", ""))
            except ValueError:
                port = None
        self._replicas[rid] = _Replica(
            rid, env.get("BERTH_DEPLOYMENT_ID", ""), proc.pid, port,
            self.run_dir / f"{rid}.exit", process=proc,
        )

    # -- metrics and logs --------------------------------------------------------------

    async def stats(self, replica_id: str) -> ReplicaStats | None:
        replica = self._replicas.get(replica_id)
        if replica is None or replica.process is None or not self._alive(replica):
            return None
        try:
            procs = [replica.process, *replica.process.children(recursive=True)]
        except psutil.Error:
            return None
        cpu, memory = 0.0, 0
        seen: dict[int, psutil.Process] = {}
        for proc in procs:
            cached = replica.stat_procs.get(proc.pid)
            if cached is None or cached != proc:  # equal means same pid and create time
                cached = proc
            try:
                with cached.oneshot():
                    cpu += cached.cpu_percent(None)
                    memory += cached.memory_info().rss
            except psutil.Error:
                continue
            seen[proc.pid] = cached
        replica.stat_procs = seen
        return ReplicaStats(
            replica_id=replica_id, cpu_percent=cpu, memory_bytes=memory, processes=len(seen),
        )

    def logs(
        self, deployment_id: str, *, since: float | None = None, limit: int = 1000,
        replica_id: str | None = None,
    ) -> list[LogLine]:
        directory = self.logs_dir / _component(deployment_id)
        if replica_id is not None:
            replica_id = _component(replica_id)
        return read_logs(directory, since=since, limit=limit, replica_id=replica_id)

    def purge_logs(self, deployment_id: str) -> None:
        shutil.rmtree(self.logs_dir / _component(deployment_id), ignore_errors=True)
        self._logs.forget(deployment_id)

    def keep_logs(self, deployment_id: str, policy: LogPolicy) -> None:
        """Write the policy for the shims when it changes; prune the files no running shim
        writes (each running shim prunes its own)."""
        self._logs.keep(deployment_id, self.logs_dir / _component(deployment_id), policy,
                        lambda: {rid for rid, r in self._replicas.items() if self._alive(r)})

    # -- working directories -----------------------------------------------------------

    def _fresh_workdir(self, rid: str) -> Path:
        """An empty, private directory for the replica (what an earlier run left is gone)."""
        self.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.work_dir, 0o700)  # mkdir's mode is masked by the umask
        path = self.work_dir / rid
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(mode=0o700)
        os.chmod(path, 0o700)
        return path

    def _remove_workdir(self, rid: str) -> None:
        if rid and rid not in (".", "..") and "/" not in rid and "\0" not in rid:
            shutil.rmtree(self.work_dir / rid, ignore_errors=True)

    def _remove_stray_workdirs(self) -> None:
        """Directories of replicas this runtime does not track (their processes are gone)."""
        try:
            names = [p.name for p in self.work_dir.iterdir()]
        except OSError:
            return
        for name in names:
            if name not in self._replicas:
                path = self.work_dir / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    # -- internals ---------------------------------------------------------------------

    def _allocate_port(self) -> int:
        taken = {r.port for r in self._replicas.values()}
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port: int = sock.getsockname()[1]
            if port not in taken:
                return port
        raise RuntimeError("no free loopback port")

    def _alive(self, replica: _Replica) -> bool:
        """Whether the shim still runs; records the exit the first time it is seen gone."""
        if replica.exit is not None:
            return False
        if replica.popen is not None:
            alive = replica.popen.poll() is None
        else:
            alive = replica.process is not None and _running(replica.process)
        if not alive:
            replica.exit = self._exit_info(replica)
        return alive

    def _exit_info(self, replica: _Replica) -> tuple[int | None, str]:
        try:
            record = json.loads(replica.exit_path.read_text(encoding="utf-8"))
            return int(record["code"]), str(record.get("error", ""))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if replica.popen is not None and replica.popen.returncode is not None:
            return _shell_code(replica.popen.returncode), ""
        return None, ""

    async def _wait_gone(self, replicas: list[_Replica], seconds: float) -> None:
        await _wait_until(lambda: not any(self._alive(r) for r in replicas), seconds)

    def _reap_stragglers(self) -> None:
        self._unreaped = [p for p in self._unreaped if p.poll() is None]


async def _wait_until(done: Callable[[], bool], seconds: float) -> None:
    """Poll `done` until true or `seconds` pass: a process exiting has no event to await."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not done() and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(_POLL)


def _inherited_env() -> dict[str, str]:
    """The server's environment less Berth's own settings; its PYTHONPATH made absolute, as
    it was meant from the server's directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(
            os.path.abspath(p) if p else p for p in env["PYTHONPATH"].split(os.pathsep))
    return env


def _component(name: str) -> str:
    """An id used as a file name: no separators, no dots-only names."""
    if not name or "/" in name or "\\" in name or "\0" in name or name in (".", ".."):
        raise ValueError(f"invalid id for a file name: {name!r}")
    return name


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _shell_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _killpg(pgid: int, sig: int) -> None:
    if pgid > 1:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def _kill(pid: int, sig: int) -> None:
    if pid > 1:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
