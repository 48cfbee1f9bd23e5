"""What podman prints as JSON (`ps`, `inspect`, `stats`), as the fields Berth reads.

Fields podman leaves out or sets to null take their defaults; others are ignored, so a
newer podman that adds fields still parses.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

# A container in one of these states has a process that may still run (or is about to).
LIVE_STATES = frozenset({"created", "configured", "initialized", "running", "paused", "stopping"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


def _none_to_default(value: Any, default: Any) -> Any:
    return default if value is None else value


class PsPort(_Model):
    host_ip: str = ""
    container_port: int
    host_port: int
    protocol: str = "tcp"


class PsContainer(_Model):
    """One element of `podman ps -a --format json`."""

    id: str = Field(alias="Id")
    names: list[str] = Field(default_factory=list, alias="Names")
    state: str = Field(default="", alias="State")
    labels: dict[str, str] = Field(default_factory=dict, alias="Labels")
    pid: int = Field(default=0, alias="Pid")
    exit_code: int = Field(default=0, alias="ExitCode")
    exited: bool = Field(default=False, alias="Exited")
    ports: list[PsPort] = Field(default_factory=list, alias="Ports")

    @field_validator("names", "labels", "ports", mode="before")
    @classmethod
    def _nulls(cls, value: Any, info: ValidationInfo) -> Any:
        return _none_to_default(value, {} if info.field_name == "labels" else [])

    @field_validator("state", mode="before")
    @classmethod
    def _state(cls, value: Any) -> Any:
        return str(value).lower() if value is not None else ""

    @property
    def alive(self) -> bool:
        return self.state in LIVE_STATES

    def host_port(self, container_port: int | None = None) -> int | None:
        for port in self.ports:
            if container_port is None or port.container_port == container_port:
                return port.host_port
        return None


class InspectState(_Model):
    status: str = Field(default="", alias="Status")
    running: bool = Field(default=False, alias="Running")
    oom_killed: bool = Field(default=False, alias="OOMKilled")
    pid: int = Field(default=0, alias="Pid")
    conmon_pid: int = Field(default=0, alias="ConmonPid")
    exit_code: int = Field(default=0, alias="ExitCode")
    error: str = Field(default="", alias="Error")

    @property
    def alive(self) -> bool:
        return self.status.lower() in LIVE_STATES


class InspectLogConfig(_Model):
    type: str = Field(default="", alias="Type")
    path: str = Field(default="", alias="Path")


class InspectHostConfig(_Model):
    log_config: InspectLogConfig = Field(default_factory=InspectLogConfig, alias="LogConfig")
    memory: int = Field(default=0, alias="Memory")  # bytes; 0: no limit
    memory_swap: int = Field(default=0, alias="MemorySwap")
    nano_cpus: int = Field(default=0, alias="NanoCpus")
    cpu_quota: int = Field(default=0, alias="CpuQuota")
    cpu_period: int = Field(default=0, alias="CpuPeriod")
    pids_limit: int = Field(default=0, alias="PidsLimit")

    @property
    def cpus(self) -> float | None:
        if self.nano_cpus:
            return self.nano_cpus / 1e9
        if self.cpu_quota > 0 and self.cpu_period > 0:
            return self.cpu_quota / self.cpu_period
        return None


class InspectConfig(_Model):
    labels: dict[str, str] = Field(default_factory=dict, alias="Labels")
    env: list[str] = Field(default_factory=list, alias="Env")

    @field_validator("labels", "env", mode="before")
    @classmethod
    def _nulls(cls, value: Any, info: ValidationInfo) -> Any:
        return _none_to_default(value, {} if info.field_name == "labels" else [])


class InspectContainer(_Model):
    """One element of `podman inspect <container>`."""

    id: str = Field(alias="Id")
    name: str = Field(default="", alias="Name")
    state: InspectState = Field(default_factory=InspectState, alias="State")
    host_config: InspectHostConfig = Field(default_factory=InspectHostConfig,
                                           alias="HostConfig")
    config: InspectConfig = Field(default_factory=InspectConfig, alias="Config")


class ContainerStats(_Model):
    """One line of `podman stats --no-stream --format '{{json .ContainerStats}}'`: podman's
    own counters, exact (its `--format json` prints them rounded, e.g. "10.5MB / 67.1MB")."""

    container_id: str = Field(default="", alias="ContainerID")
    name: str = Field(default="", alias="Name")
    cpu_percent: float = Field(default=0.0, alias="CPU")  # since the container started
    cpu_nano: int = Field(default=0, alias="CPUNano")  # CPU time used, ns
    system_nano: int = Field(default=0, alias="SystemNano")  # when it was read, ns
    mem_usage: int = Field(default=0, alias="MemUsage")
    mem_limit: int = Field(default=0, alias="MemLimit")
    pids: int = Field(default=0, alias="PIDs")


class PodmanOutputError(ValueError):
    """Podman printed something that is not the JSON expected."""


_PS = TypeAdapter(list[PsContainer])
_INSPECT = TypeAdapter(list[InspectContainer])


def parse_ps(text: str) -> list[PsContainer]:
    if not text.strip():
        return []
    try:
        return _PS.validate_json(text)
    except ValidationError as exc:
        raise PodmanOutputError(f"podman ps printed unexpected JSON: {exc}") from exc


def parse_inspect(text: str) -> list[InspectContainer]:
    if not text.strip():
        return []
    try:
        return _INSPECT.validate_json(text)
    except ValidationError as exc:
        raise PodmanOutputError(f"podman inspect printed unexpected JSON: {exc}") from exc


def parse_stats(text: str) -> list[ContainerStats]:
    """One JSON object per line (a JSON array is read too)."""
    stripped = text.strip()
    if not stripped:
        return []
    try:
        if stripped.startswith("["):
            items = json.loads(stripped)
        else:
            items = [json.loads(line) for line in stripped.splitlines() if line.strip()]
        return [ContainerStats.model_validate(item) for item in items]
    except (ValueError, TypeError) as exc:  # ValidationError is a ValueError
        raise PodmanOutputError(f"podman stats printed unexpected JSON: {exc}") from exc
