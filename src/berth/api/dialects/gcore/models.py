"""Gcore's request bodies, with the official SDK's field names and types
(`gcore.types.cloud.inference.*_params`).

Gcore's API refuses unknown fields (a ValidationError), so every model here forbids them.
A wrong type or an unknown field is a 400 naming the field as Gcore names it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from berth.api.dialects.request_schema import model_body, parse_object
from berth.domain.errors import SpecInvalid, Violation

M = TypeVar("M", bound=BaseModel)


class GcoreModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Threshold(GcoreModel):
    threshold: int


class HttpTrigger(GcoreModel):
    rate: int
    window: int | None = None


class Triggers(GcoreModel):
    cpu: Threshold | None = None
    memory: Threshold | None = None
    gpu_memory: Threshold | None = None
    gpu_utilization: Threshold | None = None
    http: HttpTrigger | None = None
    sqs: dict[str, Any] | None = Field(default=None, description="Refused: needs AWS SQS.")


class Scale(GcoreModel):
    min: int
    max: int
    cooldown_period: int | None = None
    polling_interval: int | None = None
    triggers: Triggers | None = None


class Container(GcoreModel):
    region_id: int
    scale: Scale


class ExecAction(GcoreModel):
    command: list[str]


class HttpGetAction(GcoreModel):
    port: int | None = None
    headers: dict[str, str] | None = None
    host: str | None = None
    path: str | None = None
    schema_: str | None = Field(default=None, alias="schema")


class TcpSocketAction(GcoreModel):
    port: int | None = None


class Probe(GcoreModel):
    exec: ExecAction | None = None
    http_get: HttpGetAction | None = None
    tcp_socket: TcpSocketAction | None = None
    failure_threshold: int | None = None
    initial_delay_seconds: int | None = None
    period_seconds: int | None = None
    success_threshold: int | None = None
    timeout_seconds: int | None = None


class ProbeConfig(GcoreModel):
    enabled: bool = True
    probe: Probe | None = None


class Probes(GcoreModel):
    startup_probe: ProbeConfig | None = None
    readiness_probe: ProbeConfig | None = None
    liveness_probe: ProbeConfig | None = None


class IngressOpts(GcoreModel):
    disable_response_buffering: bool = False


class RetentionPolicy(GcoreModel):
    period: int | None = Field(description="Days a replica's log lines are kept.")


class Logging(GcoreModel):
    enabled: bool = True
    retention_policy: RetentionPolicy | None = None
    topic_name: str | None = Field(default=None, max_length=200)
    destination_region_id: int | None = None


class DeploymentUpdate(GcoreModel):
    """A v3 update (PATCH): the fields given are merged into the deployment."""

    project_id: int | None = Field(default=None, description="Must be the path's project.")
    image: str | None = None
    listening_port: int | None = None
    flavor_name: str | None = None
    containers: list[Container] | None = None
    api_keys: list[str] | None = None
    auth_enabled: bool | None = None
    command: list[str] | None = None
    credentials_name: str | None = None
    description: str | None = None
    envs: dict[str, str] | None = None
    ingress_opts: IngressOpts | None = None
    logging: Logging | None = None
    probes: Probes | None = None
    timeout: int | None = None


class DeploymentCreate(DeploymentUpdate):
    """A v3 create or replace (PUT): the SDK's required fields are required."""

    name: str
    image: str
    listening_port: int
    flavor_name: str
    containers: list[Container]


class InstanceUpdate(DeploymentUpdate):
    """A v2 instance PUT (seed 001): the whole instance, flavor, API keys and registry by
    id."""

    name: str | None = None
    flavor_id: str | None = None
    api_key_ids: list[str] | None = None
    image_registry_id: str | None = None


class ApiKeyCreate(GcoreModel):
    project_id: int | None = None
    name: str
    description: str | None = None
    expires_at: str | None = None


class ApiKeyUpdate(GcoreModel):
    project_id: int | None = None
    description: str | None = None


class RegistryCredentialReplace(GcoreModel):
    project_id: int | None = None
    registry_url: str
    username: str
    password: str


class RegistryCredentialCreate(RegistryCredentialReplace):
    name: str


class SecretData(GcoreModel):
    aws_access_key_id: str
    aws_secret_access_key: str


class SecretReplace(GcoreModel):
    project_id: int | None = None
    type: str
    data: SecretData


class SecretCreate(SecretReplace):
    name: str


def parse(model: type[M], body: Any) -> M:
    """The body as `model`, or SpecInvalid naming each broken field."""
    return parse_object(model, body)


def check_project(request: GcoreModel, project_id: int) -> None:
    """A `project_id` in the body must be the one the path names."""
    given = getattr(request, "project_id", None)
    if given is not None and given != project_id:
        raise SpecInvalid([Violation("project_id", "matches_path",
                                     f"is {given} but the path names project {project_id}")])


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` declaring `model` as the JSON request body, its schema inlined."""
    return model_body(model)
