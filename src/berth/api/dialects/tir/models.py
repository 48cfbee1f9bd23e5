"""TIR's request bodies, with the field names and types the `e2enetworks` SDK sends
(`EndPoints.create`, `update`, the actions) and seed 000 lists.

TIR's API (Django REST framework serializers) ignores fields it does not know, so these
models do too; a known field of the wrong type is a 400 naming it. Empty strings, which the
SDK sends for unset values, read as absent.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

from berth.api.dialects.request_schema import model_body, parse_object
from berth.domain.spec import MAX_SECONDS

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def _blank(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _flag(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return _blank(value)


Opt = Annotated[T | None, BeforeValidator(_blank)]
# A boolean, or the SDK's strings "true" / "false"; nothing else.
Flag = Annotated[Annotated[bool, Strict()] | None, BeforeValidator(_flag)]


class TirModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ProbeConfig(TirModel):
    protocol: Opt[str] = None
    path: Opt[str] = None
    port: Opt[int] = None
    commands: Opt[str | list[str]] = None
    grpc_service: Opt[str] = None
    initial_delay_seconds: Opt[float] = None
    period_seconds: Opt[float] = None
    timeout_seconds: Opt[float] = None
    failure_threshold: Opt[int] = None
    success_threshold: Opt[int] = None


class AdvanceConfig(TirModel):
    image_pull_policy: Opt[Literal["Always", "IfNotPresent", "Never"]] = None
    is_readiness_probe_enabled: Flag = None
    is_liveness_probe_enabled: Flag = None
    readiness_probe: ProbeConfig | None = None
    liveness_probe: ProbeConfig | None = None


class PrivateImageDetails(TirModel):
    registry_namespace_id: Opt[int] = None


class ContainerDetails(TirModel):
    container_name: Opt[str] = None
    container_type: Opt[str] = None
    private_image_details: PrivateImageDetails | None = None
    advance_config: AdvanceConfig | None = None


class EnvVariable(TirModel):
    key: str
    value: str | int | float | bool | None = None


class ResourceDetails(TirModel):
    disk_size: Opt[int] = None
    mount_path: Opt[str] = None
    env_variables: list[EnvVariable] | None = None


class CustomEndpointDetails(TirModel):
    container: ContainerDetails | None = None
    resource_details: ResourceDetails | None = None


class DetailedInfo(TirModel):
    commands: Opt[str | list[str]] = None
    args: Opt[str | list[str]] = None
    hugging_face_id: Opt[str] = None
    tokenizer: Opt[str] = None


# Autoscaling periods in seconds; the SDK sends them as strings ("60", "300").
Seconds = Annotated[int, Field(ge=0, le=MAX_SECONDS)]


class Rule(TirModel):
    metric: Literal["concurrency", "requestRate", "custom", "cpu", "memory"]
    # "limit" (the SDK's only value): `value` is the per-replica target. Berth serves no
    # other kind of condition, so any other is refused by the Literal.
    condition_type: Opt[Literal["limit"]] = None
    condition_value: Opt[float] = None
    value: Opt[float] = None
    custom_metric_name: Opt[str] = None
    # Seconds of load the rule is averaged over: the native stable window.
    watch_period: Opt[Annotated[int, Field(ge=1, le=MAX_SECONDS)]] = None


class AutoScalePolicy(TirModel):
    min_replicas: int = 1
    max_replicas: int = 1
    rules: list[Rule] | None = None
    stability_period: Opt[Seconds] = None  # the native cooldown_period
    initial_cooldown_period: Opt[Seconds] = None  # only 0: see requests.scale


class TargetRoute(TirModel):
    route_name: str
    route_value: str


class EndpointFields(TirModel):
    """A create body, and what `action: patch` may change."""

    name: Opt[str] = None
    sku_id: Opt[int] = None
    sku_item_price_id: Opt[int] = None
    replica: Opt[int] = None
    replicas: Opt[int] = None
    committed_replicas: Opt[int] = None
    is_auto_scale_enabled: Flag = None
    auto_scale_policy: AutoScalePolicy | None = None
    custom_endpoint_details: CustomEndpointDetails | None = None
    detailed_info: DetailedInfo | None = None
    framework: Opt[str] = None
    world_size: Opt[int] = None
    path: Opt[str] = None
    model_id: Opt[int | str] = None
    model_load_integration_id: Opt[int | str] = None
    dataset_id: Opt[int | str] = None
    dataset_path: Opt[str] = None
    cluster_type: Opt[str] = None
    storage_type: Opt[str] = None
    sfs_path: Opt[str] = None
    disk_path: Opt[str] = None


class EndpointCreate(EndpointFields):
    pass


Action = Literal["patch", "start", "stop", "restart", "update_auto_scale",
                 "disable_auto_scale", "update_async_configuration"]


class EndpointAction(EndpointFields):
    """The body of `PUT …/serving/inference/{id}/`: an action and its settings."""

    action: Action = "patch"
    async_enabled: Flag = None
    async_concurrent_workers: Opt[int] = None
    async_dataset_id: Opt[int | str] = None
    async_destination_type: Opt[str] = None
    async_target_routes: list[TargetRoute] | None = None


def parse(model: type[M], body: Any) -> M:
    """The body as `model`, or SpecInvalid naming each broken field."""
    return parse_object(model, body)


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` declaring `model` as the JSON request body, its schema inlined."""
    return model_body(model)
