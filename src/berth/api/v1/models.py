"""Wire models of the native v1 API. The client and the CLI import these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from berth.domain.invocations import InvocationStatus
from berth.domain.spec import Container, DeploymentSpec
from berth.domain.status import DeploymentStatus, DesiredState, ReplicaState, TaskKind, TaskState


class Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DeployStatus(Out):
    ready: int = 0
    total: int = 0


class ContainerOut(Container):
    model_config = ConfigDict(extra="ignore")
    deploy_status: DeployStatus = Field(default_factory=DeployStatus)
    error_message: str = ""
    desired: int | None = Field(
        default=None, description="Replicas the autoscaler decided on for this region, within "
        "scale.min and scale.max; null: no decision (not running, or not decided yet). "
        "Read-only: PUT ignores it.")


class DeploymentOut(DeploymentSpec):
    """The spec as stored, plus what Berth observed. PUT accepts this shape back."""

    model_config = ConfigDict(extra="ignore")
    containers: list[ContainerOut]  # type: ignore[assignment]
    id: str
    project: str
    generation: int
    observed_generation: int
    desired_state: DesiredState
    status: DeploymentStatus
    status_reason: str
    status_since: datetime | None
    address: str | None
    created_at: datetime
    updated_at: datetime


class DeploymentList(Out):
    items: list[DeploymentOut]
    count: int


class Accepted(Out):
    """A change was stored; `task_id` tracks its convergence."""

    deployment: DeploymentOut
    task_id: str


class TaskOut(Out):
    id: str
    kind: TaskKind
    state: TaskState
    project: str
    deployment: str
    deployment_id: str
    generation: int
    error: str
    message: str
    created_at: datetime
    updated_at: datetime


class ReplicaStatsOut(Out):
    cpu_percent: float
    memory_bytes: int
    processes: int


class ReplicaOut(Out):
    id: str
    region: str
    state: ReplicaState
    reason: str
    ready: bool
    port: int | None
    pid: int | None
    restarts: int
    generation: int
    gpus: list[int]
    started_at: datetime | None
    exit_code: int | None
    last_error: str
    stats: ReplicaStatsOut | None = None


class ReplicaList(Out):
    items: list[ReplicaOut]


class EventOut(Out):
    id: int
    at: datetime
    kind: str
    reason: str
    message: str
    replica_id: str


class EventList(Out):
    items: list[EventOut]


class LogLineOut(Out):
    ts: datetime
    replica_id: str
    stream: str
    line: str


class LogList(Out):
    items: list[LogLineOut]


class FlavorOut(Out):
    name: str
    cpu: float
    memory: str
    memory_bytes: int
    gpus: int
    gpu_model: str
    gpu_memory_mib: int
    gpu_compute_capability: str
    description: str


class FlavorList(Out):
    items: list[FlavorOut]


class GpuOut(Out):
    index: int
    model: str
    memory_mib: int


class RegionOut(Out):
    name: str
    runtime: str
    runs_images: bool
    cpus: int
    memory_bytes: int
    gpus: list[GpuOut]


class RegionList(Out):
    items: list[RegionOut]


class ErrorDetail(Out):
    field: str
    rule: str
    message: str


class ErrorInfo(Out):
    code: str
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)


class ErrorOut(Out):
    error: ErrorInfo


class ApiKeyOut(Out):
    """An inference API key; its secret is shown only once, when it is created."""

    id: str = Field(default="", description="Stable id (Gcore v2 refers to keys by id).")
    name: str
    description: str
    prefix: str = Field(description="The secret's first characters, to tell keys apart.")
    created_at: datetime
    expires_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="Send as 'Authorization: Bearer <secret>' or "
                                    "'X-Api-Key: <secret>'. Shown only this once.")


class ApiKeyList(Out):
    items: list[ApiKeyOut]


class AutoscalerMetricOut(Out):
    value: float | None = Field(description="The trigger's window average; null: no fresh "
                                            "sample.")
    target: float = Field(description="Per-replica target, in the trigger's unit.")
    age_seconds: float | None = Field(description="Seconds since the newest sample.")
    wants: int | None = Field(default=None, description="Replicas this trigger asks for.")
    status: str = Field(default="ok", description="ok, idle, stale or 'unavailable: why'.")


class AutoscalerRegionOut(Out):
    region: str
    current: int = Field(description="Replicas of the current spec running or starting.")
    desired: int = Field(description="The count the controller is bringing it to.")
    min: int
    max: int
    panic: bool
    reasons: list[str]
    metrics: dict[str, AutoscalerMetricOut]
    last_scale_at: datetime | None = None
    decided_at: datetime | None = None


class AutoscalerOut(Out):
    regions: list[AutoscalerRegionOut]


class DatasetOut(Out):
    """A named place for async results: a directory under the data directory, or an fsspec
    URL."""

    id: int
    project: str
    name: str
    url: str | None = Field(description="fsspec URL; null: a directory under the data "
                                        "directory.")
    description: str
    created_at: datetime


class DatasetList(Out):
    items: list[DatasetOut]


class ObjectOut(Out):
    path: str = Field(description="Relative to the dataset's root.")
    size: int
    modified_at: datetime | None


class ObjectList(Out):
    items: list[ObjectOut]


class AsyncAccepted(Out):
    """The gateway stored an async request (`POST {address}/async/{route}`)."""

    request_id: str
    status_url: str = ""


class AsyncRequestOut(Out):
    id: str = Field(description="The request id.")
    deployment: str
    status: InvocationStatus
    reason: str
    attempts: int
    max_attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    status_code: int | None = Field(description="The replica's answer to the last try.")
    error: str | None
    route: str
    body_size: int
    dataset: str | None = Field(description="The dataset holding the result.")
    result_path: str | None = Field(description="The result's object in `dataset`.")
    result_size: int | None = None
    expires_at: datetime | None = Field(description="When the result is removed.")
    result: Any = Field(default=None, description="The result when it is JSON of at most "
                        "1 MiB (single reads only); else null: read `result_path` from the "
                        "dataset.")


class AsyncRequestPage(Out):
    total: int = Field(description="Requests matching the filters.")
    page: int
    per_page: int
    counts: dict[InvocationStatus, int] = Field(
        description="Requests per status within since/until (whatever the status filter).")
    items: list[AsyncRequestOut]
