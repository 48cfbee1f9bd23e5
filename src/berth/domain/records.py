"""Stored records: what the store keeps and the services and controller exchange."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from berth.domain.spec import DeploymentSpec
from berth.domain.status import (
    DeploymentStatus,
    DesiredState,
    FailureKind,
    ReplicaState,
    TaskKind,
    TaskState,
)


@dataclass
class ContainerStatus:
    region: str
    ready: int = 0
    total: int = 0
    error: str = ""


@dataclass
class Deployment:
    id: str
    project: str
    name: str
    spec: DeploymentSpec
    generation: int
    desired: DesiredState
    restart_nonce: int
    created_at: datetime
    updated_at: datetime
    status: DeploymentStatus = DeploymentStatus.NEW
    status_reason: str = "created"
    status_since: datetime | None = None
    observed_generation: int = 0
    containers: list[ContainerStatus] = field(default_factory=list)
    halted_template: str = ""  # template hash whose rollout was halted, with halted_reason
    halted_reason: str = ""
    last_request_at: datetime | None = None  # latest request any gateway saw (idle timeout)

    @property
    def template(self) -> str:
        return self.spec.template_hash(self.restart_nonce)


@dataclass
class Replica:
    id: str
    deployment_id: str
    region: str
    template: str
    generation: int
    state: ReplicaState
    reason: str
    since: datetime
    created_at: datetime
    ready: bool = False
    port: int | None = None
    pid: int | None = None
    gpus: list[int] = field(default_factory=list)
    restarts: int = 0
    failures: int = 0  # consecutive failures; reset after a stable run
    started_at: datetime | None = None
    ready_at: datetime | None = None
    next_start_at: datetime | None = None
    state_deadline: datetime | None = None  # end of drain or of the stop grace period
    exit_code: int | None = None
    last_error: str = ""
    failure: FailureKind | None = None  # how the last run ended (last_error says it in words)
    kill_sent: bool = False  # SIGKILL sent after the stop grace period
    unschedulable: str = ""  # why it cannot be placed now (e.g. no free GPU); "" if it can
    pulling: str = ""  # its image is being pulled: the latest progress; "" otherwise
    drain_version: int | None = None  # routing version without it; gateways must reach it
    # Asked to be replaced (a single-replica restart). Written only by the service, never
    # by the controller's row saves, so a tick cannot lose a request made while it ran.
    restart_requested_at: datetime | None = None

    @property
    def routable(self) -> bool:
        """Serving traffic: running, ready and listening."""
        return self.state == ReplicaState.RUNNING and self.ready and self.port is not None


@dataclass
class Task:
    id: str
    kind: TaskKind
    project: str
    deployment_id: str
    deployment_name: str
    generation: int
    state: TaskState
    created_at: datetime
    updated_at: datetime
    error: str = ""
    message: str = ""


@dataclass
class Event:
    deployment_id: str
    at: datetime
    kind: str
    reason: str
    message: str
    replica_id: str = ""
    id: int = 0
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class ApiKey:
    """An inference API key. Only the secret's SHA-256 `digest` is kept; `prefix` is its
    first characters, for telling keys apart."""

    id: str
    project: str
    name: str
    description: str
    digest: str = field(repr=False)
    prefix: str
    created_at: datetime
    expires_at: datetime | None = None


@dataclass
class ControlToken:
    """A token for the control APIs. Only its SHA-256 digest is kept."""

    id: str
    name: str
    kind: str  # "admin" (the data directory's token) or "control"
    digest: str = field(repr=False)
    access: str  # "admin", "write" or "read"
    projects: list[str] | None  # None: every project
    created_at: datetime

    def may(self, write: bool, project: str | None) -> bool:
        if write and self.access == "read":
            return False
        return project is None or self.projects is None or project in self.projects


@dataclass
class RegistryCredential:
    """How to pull images from a private registry. The password is kept only sealed
    (encrypted with the data directory's key), so it can be opened for a pull but is never
    shown."""

    id: str
    project: str
    name: str
    registry_url: str
    username: str
    sealed_password: str = field(repr=False)
    created_at: datetime
    updated_at: datetime


@dataclass
class Secret:
    """A named secret of a project (e.g. AWS credentials). `public` holds the fields its type
    shows (an access key id); the whole data is kept only sealed in `sealed_data`."""

    id: str
    project: str
    name: str
    type: str
    public: dict[str, str]
    sealed_data: str = field(repr=False)
    created_at: datetime
    updated_at: datetime
