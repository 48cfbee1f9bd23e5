"""Foundry request bodies, as `foundry-platform-sdk` types them (camelCase on the wire).

Unknown fields are refused. As on Foundry's (Conjure) wire, a missing list or map is empty:
`sources` and `environmentVariables` may be left out.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from berth.domain.units import parse_size

# Foundry's GpuType enum (foundry_sdk.v2.models.models.GpuType).
GpuType = Literal["A100", "A10G", "A16", "B200", "B300", "H100", "H200", "L4", "L40S", "T4",
                  "V100"]
TimeUnit = Literal["MILLISECONDS", "SECONDS", "MINUTES", "HOURS", "DAYS", "WEEKS"]
Rid = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class FoundryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateModelRequest(FoundryBody):
    name: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"\S")]
    parent_folder_rid: Rid = Field(alias="parentFolderRid")


class Duration(FoundryBody):
    value: int = Field(ge=0, le=10**9)
    unit: TimeUnit


class LiveDeploymentScalingConfiguration(FoundryBody):
    scale_up_load_threshold: float = Field(alias="scaleUpLoadThreshold", ge=0, le=1)
    scale_up_delay: Duration = Field(alias="scaleUpDelay")
    scale_down_delay: Duration = Field(alias="scaleDownDelay")


class LiveDeploymentGpu(FoundryBody):
    count: int = Field(le=64)
    type: GpuType | None = None


class LiveDeploymentRuntimeConfiguration(FoundryBody):
    min_replicas: int = Field(alias="minReplicas", ge=0, le=1000)
    max_replicas: int = Field(alias="maxReplicas", ge=0, le=1000)
    cpu: float | None = Field(default=None, gt=0, le=1024)
    memory: Annotated[str, StringConstraints(max_length=50)] | None = None
    gpu: LiveDeploymentGpu | None = None
    thread_count: int | None = Field(default=None, alias="threadCount", ge=1)
    scaling_configuration: LiveDeploymentScalingConfiguration | None = Field(
        default=None, alias="scalingConfiguration")
    sources: list[Rid] = Field(default_factory=list, max_length=100)
    environment_variables: dict[str, str] = Field(default_factory=dict,
                                                  alias="environmentVariables")

    @field_validator("memory")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None:
            parse_size(value)
        return value


UNSUPPORTED = "unsupported_live_deployment"


class DirectCreateLiveDeploymentTarget(FoundryBody):
    model_rid: Rid = Field(alias="modelRid")
    branch: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    type: Literal["direct"] = "direct"

    @model_validator(mode="before")
    @classmethod
    def _direct_only(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("type", "direct") != "direct":
            raise PydanticCustomError(UNSUPPORTED, "only direct live deployments "
                                      "(deploymentType.type 'direct') are supported")
        return value


class CreateLiveDeploymentRequest(FoundryBody):
    deployment_type: DirectCreateLiveDeploymentTarget = Field(alias="deploymentType")
    runtime_configuration: LiveDeploymentRuntimeConfiguration = Field(
        alias="runtimeConfiguration")


class ReplaceLiveDeploymentRequest(FoundryBody):
    runtime_configuration: LiveDeploymentRuntimeConfiguration = Field(
        alias="runtimeConfiguration")


class TransformJsonLiveDeploymentRequest(FoundryBody):
    input: dict[str, Any]


CREATE_MODEL = TypeAdapter(CreateModelRequest)
CREATE_LIVE = TypeAdapter(CreateLiveDeploymentRequest)
REPLACE_LIVE = TypeAdapter(ReplaceLiveDeploymentRequest)
TRANSFORM = TypeAdapter(TransformJsonLiveDeploymentRequest)
RUNTIME_CONFIGURATION = TypeAdapter(LiveDeploymentRuntimeConfiguration)
