"""Scale GP (models v5) request bodies, as the `scale-gp-beta` SDK types them.

Unknown fields are refused (`extra_forbidden`), as Berth refuses every setting it would
otherwise ignore. Each value keeps the type the SDK sends; what a field does in Berth is
`shapes.to_native`'s business (and docs/dialects/scale.md's field table).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    TypeAdapter,
    field_validator,
)

from berth.domain.units import parse_size

CPU_RE = re.compile(r"^(\d+(\.\d+)?)(m?)$")
HostedVendor = Literal["openai", "cohere", "vertex_ai", "anthropic", "azure", "gemini",
                       "model_zoo", "bedrock", "xai", "fireworks_ai"]
GpuType = Literal["nvidia-tesla-t4", "nvidia-ampere-a10", "nvidia-ampere-a100",
                  "nvidia-ampere-a100e", "nvidia-hopper-h100", "nvidia-hopper-h100-1g20gb",
                  "nvidia-hopper-h100-3g40gb"]

Name = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"\S")]
Route = Annotated[str, StringConstraints(max_length=500)]
ModelType = Literal["generic", "completion", "chat_completion"]
Json = dict[str, Any]


class ScaleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelImageFields(ScaleBody):
    """`model_image`, every field optional (a PATCH sends only what changes)."""

    registry: Annotated[str, StringConstraints(max_length=255)] | None = None
    repository: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    tag: Annotated[str, StringConstraints(max_length=128)] | None = None
    command: list[str] | None = None
    streaming_command: list[str] | None = None
    predict_route: Route | None = None
    streaming_predict_route: Route | None = None
    healthcheck_route: Route | None = None
    readiness_delay: int | None = Field(default=None, ge=0, le=3600)
    env_vars: Json | None = None
    request_schema: Json | None = None
    response_schema: Json | None = None


class ModelImage(ModelImageFields):
    """A whole `model_image`: `repository` is required; `registry`, `tag` and `command`
    (required by the SDK's type) default to empty, as Launch reads them."""

    repository: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    registry: Annotated[str, StringConstraints(max_length=255)] = ""
    tag: Annotated[str, StringConstraints(max_length=128)] = ""
    command: list[str] = Field(default_factory=list)


class ModelInfraFields(ScaleBody):
    endpoint_type: Literal["async", "sync", "streaming"] | None = None
    cpus: str | int | float | None = None
    gpus: int | None = Field(default=None, ge=0, le=64)
    gpu_type: GpuType | None = None
    memory: Annotated[str, StringConstraints(max_length=50)] | None = None
    storage: Annotated[str, StringConstraints(max_length=50)] | None = None
    min_workers: int | None = Field(default=None, ge=0, le=1000)
    max_workers: int | None = Field(default=None, ge=0, le=1000)
    per_worker: int | None = Field(default=None, ge=1, le=100000)
    high_priority: bool | None = None
    labels: dict[str, str] | None = None
    public_inference: bool | None = None

    @field_validator("cpus", mode="before")
    @classmethod
    def _cpus(cls, value: Any) -> Any:
        ok = (isinstance(value, int | float) and not isinstance(value, bool) and value > 0) or (
            isinstance(value, str) and CPU_RE.match(value) is not None)
        if value is not None and not ok:
            raise ValueError(f"{str(value)[:50]!r} is not a CPU amount such as 2, '0.5' or "
                             "'500m'")
        return value

    @field_validator("memory", "storage")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None:
            parse_size(value)
        return value

    @field_validator("high_priority")
    @classmethod
    def _no_priority(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError(
                "Berth runs every replica at the same priority: one machine has no priority "
                "classes to schedule or preempt by; send false or leave it out")
        return value


class ModelInfra(ModelInfraFields):
    pass


class LaunchVendorConfiguration(ScaleBody):
    model_image: ModelImage
    model_infra: ModelInfra = Field(default_factory=ModelInfra)


class PartialLaunchVendorConfiguration(ScaleBody):
    """A PATCH's `vendor_configuration`: each key given replaces that key."""

    model_image: ModelImageFields | None = None
    model_infra: ModelInfraFields | None = None


class LaunchCreate(ScaleBody):
    name: Name
    model_vendor: Literal["launch"] = "launch"
    model_type: ModelType = "generic"
    model_metadata: Json = Field(default_factory=dict)
    vendor_configuration: LaunchVendorConfiguration
    on_conflict: Literal["error", "update"] = "error"


class LlmEngineCreate(ScaleBody):
    """Refused: llmengine models need Scale's LLM Engine."""

    model_config = ConfigDict(extra="ignore")  # the one error said is the vendor's

    model_vendor: Literal["llmengine"]

    @field_validator("model_vendor")
    @classmethod
    def _unsupported(cls, value: str) -> str:
        raise ValueError("llmengine models need Scale's LLM Engine; deploy the serving image "
                         "as a launch model instead")


class HostedCreate(ScaleBody):
    """A model of a hosted vendor: a record only, served by that vendor."""

    name: Name
    model_vendor: HostedVendor
    model_type: ModelType = "generic"
    model_metadata: Json = Field(default_factory=dict)
    vendor_configuration: None = None
    on_conflict: Literal["error", "update"] = "error"

    @field_validator("vendor_configuration", mode="before")
    @classmethod
    def _not_applicable(cls, value: Any) -> None:
        if value is not None:
            raise ValueError("hosted vendors serve their models themselves; "
                             "vendor_configuration applies to launch models only")
        return None


def _vendor(body: Any) -> str:
    vendor = body.get("model_vendor", "launch") if isinstance(body, dict) else "launch"
    return vendor if vendor in ("launch", "llmengine") else "hosted"


CreateModel = Annotated[
    Annotated[LaunchCreate, Tag("launch")] | Annotated[LlmEngineCreate, Tag("llmengine")]
    | Annotated[HostedCreate, Tag("hosted")], Discriminator(_vendor)]
CREATE = TypeAdapter[LaunchCreate | LlmEngineCreate | HostedCreate](CreateModel)


class PatchModel(ScaleBody):
    """`PATCH /v5/models/{id}`: any of the SDK's three patch bodies (metadata; a partial
    vendor configuration; a rename, swapping names on conflict)."""

    name: Name | None = None
    on_conflict: Literal["error", "swap"] = "error"
    model_metadata: Json | None = None
    vendor_configuration: PartialLaunchVendorConfiguration | None = None


PATCH = TypeAdapter(PatchModel)
VENDOR_CONFIGURATION = TypeAdapter(LaunchVendorConfiguration)


class InferenceConfiguration(ScaleBody):
    num_retries: int | None = Field(default=None, ge=0, le=10)
    timeout_seconds: float | None = Field(default=None, gt=0, le=86400)


class InferenceRequest(ScaleBody):
    model: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    args: Json | None = None
    inference_configuration: InferenceConfiguration | None = None
    stream: bool = False


class OpenAIRequest(BaseModel):
    """Chat and text completions: OpenAI's body, passed on to the model as sent (the
    model checks its own parameters); Berth reads `model` and `stream`."""

    model_config = ConfigDict(extra="allow")

    model: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    stream: bool = False


class ChatCompletionRequest(OpenAIRequest):
    messages: list[Json]


class CompletionRequest(OpenAIRequest):
    prompt: str | list[str]


INFERENCE = TypeAdapter(InferenceRequest)
CHAT = TypeAdapter(ChatCompletionRequest)
COMPLETION = TypeAdapter(CompletionRequest)
