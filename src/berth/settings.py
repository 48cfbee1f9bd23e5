"""One typed settings object, validated once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BERTH_", extra="ignore")

    data_dir: Path = Path(".berth")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    gateway_port: int = Field(default=8001, ge=0, le=65535)
    database_url: str = ""  # default: sqlite file in data_dir

    tick_seconds: float = Field(default=0.5, gt=0)
    autoscaler_tick_seconds: float = Field(default=0.25, gt=0,
                                           description="How often the autoscaler looks for "
                                                       "regions due a poll.")
    drain_seconds: float = Field(default=0.0, ge=0)  # minimum time out of routing
    domain: str | None = None  # host routing: {deployment}.{project}.{domain}
    # The gateway closes a client connection idle this long, and answers 408 to a request
    # head still arriving after gateway_header_seconds.
    gateway_idle_seconds: float = Field(default=75.0, gt=0)
    gateway_header_seconds: float = Field(default=60.0, gt=0)
    # The local region's number where APIs name regions by number: a Gcore user moving over
    # sets the region id their scripts already send.
    region_id: int = Field(default=1, ge=1)
    stop_grace_seconds: float = Field(default=10.0, ge=0)
    progress_deadline_seconds: float = Field(default=600.0, gt=0)
    crash_loop_threshold: int = Field(default=3, ge=1)
    backoff_base_seconds: float = Field(default=1.0, gt=0)
    backoff_max_seconds: float = Field(default=60.0, gt=0)
    stable_run_seconds: float = Field(default=30.0, gt=0)
    max_thread_count: int = Field(default=256, ge=1)
    lease_seconds: float = Field(default=10.0, gt=0)
    # An async request a dispatcher holds goes back to the queue this long after the
    # dispatcher stops renewing it (it died).
    async_lease_seconds: float = Field(default=10.0, gt=0)
    # The control API refuses a request body over this many bytes with 413 (every surface).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Images (other than the catalog's) run in podman containers: "auto" where podman is
    # installed and configured (`berth doctor`), "podman" to refuse to start without it,
    # "none" to run only catalog images and commands as local processes.
    image_runtime: Literal["auto", "podman", "none"] = "auto"
    podman_config: Path | None = None  # a containers.conf of its own (CONTAINERS_CONF)
    # Registries pulled from without TLS, e.g. "127.0.0.1:5000" (a local registry).
    insecure_registries: list[str] = Field(default_factory=list)
    # Host directories (and what is below them) a deployment's `volumes` may mount into its
    # containers, e.g. ["/models"]; none by default: a project could otherwise read any file
    # of the machine, this data directory's admin token included. Podman volumes need none.
    volume_host_paths: list[Path] = Field(default_factory=list)
    # "index:model:memory_mib,..." declares GPUs instead of detecting them (tests, odd drivers).
    gpus: str | None = None

    @field_validator("volume_host_paths")
    @classmethod
    def _absolute(cls, value: list[Path]) -> list[Path]:
        for path in value:
            if not path.is_absolute():
                raise ValueError(f"{str(path)!r} must be an absolute path")
        return value

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'berth.db').resolve()}"

    @property
    def token_file(self) -> Path:
        return self.data_dir / "admin-token"

    @property
    def credentials_key_file(self) -> Path:
        """The key that seals registry passwords and secrets (made on first use, 0600)."""
        return self.data_dir / "credentials.key"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def runtime_dir(self) -> Path:
        return self.data_dir / "run"
