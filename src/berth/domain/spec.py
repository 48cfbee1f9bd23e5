"""The deployment spec: the union of the seeds' fields in one clean shape.

Field-level rules (types, ranges, formats) live on the models; rules that need to know
the machine (regions, flavors, GPUs, the catalog) live in `validation.py`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from berth.domain.units import parse_size
from berth.domain.volumes import Volume

NAME_RE = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_./-]{0,61}[A-Za-z0-9])?$")

Port = Annotated[int, Field(ge=1, le=65535)]
MAX_SECONDS = 365 * 86400  # the longest autoscaling period a spec may name


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Threshold(Model):
    threshold: int = Field(ge=1, le=100, description="Percent of the requested resource.")


class TargetTrigger(Model):
    target: float = Field(gt=0, le=1e9, allow_inf_nan=False,
                          description="Per-replica target value.")


class HttpTrigger(Model):
    rate: float = Field(gt=0, le=1e9, allow_inf_nan=False,
                        description="Requests per second per replica.")
    window: int = Field(default=60, ge=1, le=MAX_SECONDS,
                        description="Averaging window in seconds.")


class CustomTrigger(Model):
    metric_name: str = Field(min_length=1, max_length=200, pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$",
                             description="A Prometheus metric name the replicas expose.")
    target: float = Field(gt=0, le=1e9, allow_inf_nan=False,
                          description="Per-replica target value of the gauge.")
    path: str = Field(default="/metrics", pattern=r"^/")


class Triggers(Model):
    cpu: Threshold | None = None
    memory: Threshold | None = None
    gpu_utilization: Threshold | None = None
    gpu_memory: Threshold | None = None
    concurrency: TargetTrigger | None = None
    request_rate: TargetTrigger | None = None
    http: HttpTrigger | None = None
    custom: list[CustomTrigger] = Field(default_factory=list)
    queue: TargetTrigger | None = Field(
        default=None, description="Async invocations waiting per replica (the backlog).")


class Scale(Model):
    min: int = Field(default=1, ge=0, le=1000)
    max: int = Field(default=1, ge=0, le=1000)
    cooldown_period: int = Field(
        default=60, ge=0, le=MAX_SECONDS,
        description="Seconds after the last scale event before a scale-down.")
    polling_interval: int = Field(default=30, ge=1, le=MAX_SECONDS,
                                  description="Seconds between metric reads and decisions.")
    stable_window: int | None = Field(
        default=None, ge=1, le=MAX_SECONDS,
        description="Seconds of load history a scale-down needs and averages over; "
                    "default: cooldown_period (at least two polling intervals).")
    scale_up_delay: int = Field(
        default=0, ge=0, le=MAX_SECONDS,
        description="Seconds the load must stay above target before a scale-up (not from "
                    "zero).")
    triggers: Triggers = Field(default_factory=Triggers)

    @model_validator(mode="after")
    def _min_le_max(self) -> Scale:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be less than or equal to max ({self.max})")
        return self


class Container(Model):
    region: str = Field(default="local", min_length=1, max_length=63)
    scale: Scale = Field(default_factory=Scale)


class ExecAction(Model):
    command: list[str] = Field(min_length=1)


class HttpGetAction(Model):
    path: str = Field(default="/", pattern=r"^/")
    port: Port | None = Field(default=None, description="Defaults to the listening port.")
    host: str = "127.0.0.1"
    schema_: Literal["HTTP", "HTTPS"] = Field(default="HTTP", alias="schema")
    headers: dict[str, str] = Field(default_factory=dict)


class TcpSocketAction(Model):
    port: Port | None = Field(default=None, description="Defaults to the listening port.")


class Probe(Model):
    exec: ExecAction | None = None
    http_get: HttpGetAction | None = None
    tcp_socket: TcpSocketAction | None = None
    initial_delay_seconds: float = Field(default=0, ge=0, le=3600)
    period_seconds: float = Field(default=5, ge=0.1, le=3600)
    timeout_seconds: float = Field(default=1, ge=0.1, le=3600)
    failure_threshold: int = Field(default=3, ge=1, le=1000)
    success_threshold: int = Field(default=1, ge=1, le=1000)

    @model_validator(mode="after")
    def _exactly_one_action(self) -> Probe:
        given = [n for n in ("exec", "http_get", "tcp_socket") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "exactly one of exec, http_get, tcp_socket is required"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class Probes(Model):
    startup: Probe | None = None
    readiness: Probe | None = None
    liveness: Probe | None = None

    @model_validator(mode="after")
    def _success_threshold_one(self) -> Probes:
        for kind in ("startup", "liveness"):
            probe: Probe | None = getattr(self, kind)
            if probe is not None and probe.success_threshold != 1:
                raise ValueError(f"{kind}.success_threshold must be 1")
        return self


class Resources(Model):
    cpu: float = Field(default=1, gt=0, le=1024, description="CPU cores.")
    memory: str = Field(default="1GiB", description="Memory, e.g. '256MiB' or '8Gi'.")
    gpus: int = Field(default=0, ge=0, le=64)
    gpu_type: str | None = Field(default=None, max_length=100)
    storage: str | None = Field(default=None, description="Scratch storage, e.g. '16Gi'.")
    threads: int | None = Field(default=None, ge=1)

    @field_validator("memory", "storage")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None:
            parse_size(value)
        return value

    @property
    def memory_bytes(self) -> int:
        return parse_size(self.memory)


class EndpointType(StrEnum):
    SYNC = "sync"
    STREAMING = "streaming"
    ASYNC = "async"


class Routes(Model):
    predict: str = Field(default="/predict", pattern=r"^/")
    streaming_predict: str | None = Field(default=None, pattern=r"^/")
    healthcheck: str | None = Field(default=None, pattern=r"^/")


class Ingress(Model):
    disable_response_buffering: bool = False


class Timeouts(Model):
    """Gateway timeouts, in seconds; generous by default because LLM answers are slow."""

    first_byte: float = Field(default=300, gt=0, le=86400, description="Until response headers.")
    idle: float = Field(default=120, gt=0, le=86400, description="Between body chunks.")
    total: float = Field(default=1800, gt=0, le=86400, description="Whole request.")


class Logging(Model):
    """What the runtime keeps of a replica's output. Changing it restarts no replica."""

    enabled: bool = Field(default=True, description="False: replica log lines are discarded.")
    retention_period: int | None = Field(
        default=None, ge=1, le=10 * 365 * 86400,
        description="Seconds a log line is kept; None keeps lines until the deployment is "
                    "deleted.")


MIB = 1024 * 1024
ROUTE_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class AsyncConfig(Model):
    """Async invocation: requests queued durably, dispatched by `workers`, results in a
    dataset (docs/async.md)."""

    enabled: bool = Field(default=False, description="Accept async requests. Turning it off "
                          "refuses new ones; those accepted still run.")
    workers: int = Field(default=1, ge=1, le=10000,
                         description="Requests of this deployment in flight at once.")
    dataset: str | None = Field(
        default=None, min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
        description="The project's dataset that receives the results; default: `default` "
                    "(made on first use).")
    destination_type: Literal["dataset"] = "dataset"
    result_prefix: str | None = Field(
        default=None, max_length=500, pattern=r"^([A-Za-z0-9_=+@,-][A-Za-z0-9_.=+@,-]*/)+$",
        description="Folder of the dataset for the results (`{request_id}.json` each); "
                    "default: `{deployment name}/`.")
    target_routes: dict[Annotated[str, Field(pattern=ROUTE_NAME_RE)],
                        Annotated[str, Field(pattern=r"^/", max_length=2000)]] = Field(
        default_factory=dict, max_length=100,
        description="Route name -> path on the replica; `POST {address}/async/{name}`. "
                    "Empty: `/async/{path}` goes to `/{path}`.")
    max_attempts: int = Field(default=3, ge=1, le=100,
                              description="Tries on connect errors, 5xx and timeouts.")
    attempt_timeout: float = Field(default=300, gt=0, le=86400,
                                   description="Seconds one try may take.")
    result_ttl: int = Field(default=7 * 86400, ge=1, le=MAX_SECONDS,
                            description="Seconds a result is kept after the request ends.")
    max_backlog: int = Field(default=100000, ge=1, le=10_000_000,
                             description="Requests waiting or running before intake answers "
                                         "429.")
    max_body_bytes: int = Field(default=10 * MIB, ge=1, le=1024 * MIB)


class DeploymentSpec(Model):
    """What the user asks for. Everything is stored; later parts act on each field.

    Frozen: a change is a new spec (validated whole), which also keeps the memo of
    template hashes below true.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    _templates: dict[int, str] = PrivateAttr(default_factory=dict)

    name: str = Field(min_length=4, max_length=30)
    description: str = Field(default="", max_length=1000)
    image: str = Field(min_length=1, max_length=500)
    command: list[str] | None = Field(default=None, min_length=1)
    envs: dict[str, str] = Field(default_factory=dict)
    listening_port: Port = 8080
    credentials_name: str | None = Field(default=None, description="Registry credentials.")
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = Field(
        default="IfNotPresent",
        description="Containers: pull the image when absent, on every start, or never.")
    flavor: str | None = None
    resources: Resources | None = None
    volumes: list[Volume] = Field(
        default_factory=list, max_length=32,
        description="Host paths or podman volumes mounted into each replica's container.")
    containers: list[Container] = Field(default_factory=lambda: [Container()], min_length=1)
    timeout: int | None = Field(default=120, ge=0, description="Idle seconds before scale to min.")
    probes: Probes | None = None
    api_keys: list[str] | None = None
    auth_enabled: bool | None = None
    endpoint_type: EndpointType = EndpointType.SYNC
    routes: Routes = Field(default_factory=Routes)
    per_worker: int | None = Field(default=None, ge=1, le=100000)
    max_queued_requests: int = Field(default=256, ge=0, le=100000,
                                     description="Requests waiting for a replica slot.")
    queue_timeout: float = Field(default=60, gt=0, le=3600,
                                 description="Seconds a request may wait for a slot.")
    timeouts: Timeouts = Field(default_factory=Timeouts)
    ingress: Ingress = Field(default_factory=Ingress)
    logging: Logging = Field(default_factory=Logging)
    labels: dict[str, str] = Field(default_factory=dict)
    async_: AsyncConfig = Field(default_factory=AsyncConfig, alias="async")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(
                "must be lowercase letters, digits and '-', start with a letter "
                "and end with a letter or digit"
            )
        return value

    @field_validator("envs")
    @classmethod
    def _envs(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not ENV_NAME_RE.match(key):
                raise ValueError(
                    f"environment variable name {key!r} must match [A-Za-z_][A-Za-z0-9_]*")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not LABEL_KEY_RE.match(key):
                raise ValueError(f"label key {key!r} must be 1-63 letters, digits, '_./-'")
            if len(item) > 253:
                raise ValueError(f"label {key!r} value must be at most 253 characters")
        return value

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, value: list[Volume]) -> list[Volume]:
        seen: set[str] = set()
        for v in value:
            if v.target in seen:
                raise ValueError(f"target {v.target!r} is mounted twice")
            seen.add(v.target)
        return value

    @model_validator(mode="after")
    def _exclusive(self) -> DeploymentSpec:
        if self.api_keys is not None and self.auth_enabled is not None:
            raise ValueError("api_keys and auth_enabled are mutually exclusive; use api_keys")
        if self.flavor is not None and self.resources is not None:
            raise ValueError("flavor and resources are mutually exclusive")
        return self

    def template_hash(self, restart_nonce: int) -> str:
        """Fingerprint of everything that requires replacing replicas when it changes.

        Scale, autoscaling, auth, routes and descriptions are left out: changing them never
        restarts a replica. The restart nonce is in, so a restart is a rolling replacement.
        """
        known = self._templates.get(restart_nonce)
        if known is not None:
            return known
        rolled = self.model_dump(
            mode="json",
            include={"image", "command", "envs", "listening_port", "credentials_name",
                     "flavor", "resources", "probes"},
        )
        if self.volumes:  # left out when empty: specs from before volumes keep their hash
            rolled["volumes"] = [v.model_dump(mode="json") for v in self.volumes]
        rolled["restart_nonce"] = restart_nonce
        blob = json.dumps(rolled, sort_keys=True).encode()
        self._templates[restart_nonce] = hashlib.sha256(blob).hexdigest()[:12]
        return self._templates[restart_nonce]

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        copied._templates = {}
        return copied
