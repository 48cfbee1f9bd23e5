"""The Runtime protocol: the one seam through which replicas are started, observed, stopped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

PullPolicy = Literal["IfNotPresent", "Always", "Never"]


class ImageUnavailable(Exception):
    """The replica's image could not be had (the pull was refused, the image was not found,
    the registry was unreachable): retrying soon will not help, the spec or the registry
    must change."""


@dataclass(frozen=True)
class Mount:
    """A host path (absolute) or a named volume, mounted at `target` in a container."""

    source: str
    target: str
    read_only: bool = True

    @property
    def kind(self) -> Literal["bind", "volume"]:
        return "bind" if self.source.startswith("/") else "volume"


@dataclass(frozen=True)
class LaunchSpec:
    replica_id: str
    deployment_id: str
    # "${PORT}" in an argument is replaced by the port the command listens on. For an image,
    # the arguments after the image (its CMD); [] keeps the image's own.
    command: list[str]
    envs: dict[str, str] = field(default_factory=dict)
    listening_port: int = 8080
    gpus: tuple[int, ...] = ()
    # -- containers only (the process runtime ignores these) --
    image: str | None = None  # None: a process
    entrypoint: list[str] | None = None  # None: the image's ENTRYPOINT
    # (server, username, password): decrypted only into the pull; never shown in a repr
    registry_auth: tuple[str, str, str] | None = field(default=None, repr=False)
    pull_policy: PullPolicy = "IfNotPresent"
    cpus: float | None = None
    memory_bytes: int | None = None
    pids_limit: int | None = None
    mounts: tuple[Mount, ...] = ()


@dataclass(frozen=True)
class StartedReplica:
    replica_id: str
    pid: int
    port: int
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class ProcessObservation:
    replica_id: str
    alive: bool
    pid: int | None = None
    port: int | None = None
    exit_code: int | None = None
    error: str = ""  # why it could not run, e.g. "command not found: 'vllm'"
    oom_killed: bool = False  # killed by the kernel for going over its memory limit
    memory_limit_bytes: int | None = None  # the limit it went over, when known


@dataclass(frozen=True)
class ReplicaStats:
    replica_id: str
    cpu_percent: float
    memory_bytes: int
    processes: int


@dataclass(frozen=True)
class LogPolicy:
    """What a runtime keeps of a deployment's replica log lines (the spec's `logging`)."""

    enabled: bool = True  # False: lines are discarded
    retention_seconds: int | None = None  # lines older than this are dropped


@dataclass(frozen=True)
class LogLine:
    ts: float  # unix seconds
    replica_id: str
    stream: str  # "stdout" | "stderr" | "berth"
    line: str


class Runtime(Protocol):
    name: str

    async def recover(self, known: dict[str, int | None]) -> None:
        """Adopt replicas left running by an earlier server (known: replica id -> port).
        Processes carrying this runtime's marker whose id is not known are stopped."""

    async def prepare(self, launch: LaunchSpec, on_progress: Callable[[str], None]) -> None:
        """Get ready what `start` needs that can take long (a container image's pull),
        reporting progress lines; ImageUnavailable when it cannot be had. The controller runs
        it in the background, so a long pull holds up no other replica."""

    async def start(self, launch: LaunchSpec) -> StartedReplica: ...

    async def signal(self, replica_id: str, *, kill: bool) -> None:
        """SIGTERM (or SIGKILL) the replica's whole process group; no-op if gone."""

    async def observe(self) -> dict[str, ProcessObservation]:
        """Every replica this runtime tracks, alive or exited (until forget)."""

    async def forget(self, replica_id: str) -> None: ...

    async def stats(self, replica_id: str) -> ReplicaStats | None: ...

    def logs(
        self, deployment_id: str, *, since: float | None = None, limit: int = 1000,
        replica_id: str | None = None,
    ) -> list[LogLine]:
        """Oldest-first lines with ts > since; the newest `limit` when since is None."""

    def purge_logs(self, deployment_id: str) -> None: ...

    def keep_logs(self, deployment_id: str, policy: LogPolicy) -> None:
        """Apply `policy` to the deployment's log lines, running replicas included (no
        restart); called each controller tick, so it must be cheap when nothing changed."""

    async def shutdown(self, grace: float) -> None:
        """Stop every replica (TERM, then KILL after grace) and wait for them to exit."""
