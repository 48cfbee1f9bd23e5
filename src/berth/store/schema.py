"""Tables. Alembic migrations in `migrations/versions` create and evolve them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive text)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


metadata = MetaData()

deployments = Table(
    "deployments", metadata,
    Column("id", String(36), primary_key=True),
    Column("project", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("desired", String(16), nullable=False),
    Column("restart_nonce", Integer, nullable=False, default=0),
    Column("status", String(32), nullable=False),
    Column("status_reason", Text, nullable=False, default=""),
    Column("status_since", UTCDateTime, nullable=True),
    Column("observed_generation", Integer, nullable=False, default=0),
    Column("containers", JSON, nullable=False),
    Column("halted_template", String(32), nullable=False, default=""),
    Column("halted_reason", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True),
    Column("last_request_at", UTCDateTime, nullable=True),
)
Index("ix_deployments_project_name", deployments.c.project, deployments.c.name)
Index(
    "uq_deployments_live_name", deployments.c.project, deployments.c.name, unique=True,
    sqlite_where=deployments.c.deleted_at.is_(None),
    postgresql_where=deployments.c.deleted_at.is_(None),
)

replicas = Table(
    "replicas", metadata,
    Column("id", String(40), primary_key=True),
    Column("deployment_id", String(36), nullable=False, index=True),
    Column("region", String(64), nullable=False),
    Column("template", String(32), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("since", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ready", Boolean, nullable=False, default=False),
    Column("port", Integer, nullable=True),
    Column("pid", Integer, nullable=True),
    Column("gpus", JSON, nullable=False),
    Column("restarts", Integer, nullable=False, default=0),
    Column("failures", Integer, nullable=False, default=0),
    Column("started_at", UTCDateTime, nullable=True),
    Column("ready_at", UTCDateTime, nullable=True),
    Column("next_start_at", UTCDateTime, nullable=True),
    Column("state_deadline", UTCDateTime, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("last_error", Text, nullable=False, default=""),
    Column("drain_version", Integer, nullable=True),
    Column("restart_requested_at", UTCDateTime, nullable=True),
    Column("failure", String(16), nullable=True),  # FailureKind of the last run's end
    Column("kill_sent", Boolean, nullable=False, default=False),
    Column("unschedulable", Text, nullable=False, default=""),
    Column("pulling", Text, nullable=False, default=""),  # image pull progress, while PENDING
)

tasks = Table(
    "tasks", metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("project", String(64), nullable=False),
    Column("deployment_id", String(36), nullable=False),
    Column("deployment_name", String(64), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("error", Text, nullable=False, default=""),
    Column("message", Text, nullable=False, default=""),
)
Index("ix_tasks_open", tasks.c.state, tasks.c.deployment_id)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment_id", String(36), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("reason", String(80), nullable=False),
    Column("message", Text, nullable=False),
    Column("replica_id", String(40), nullable=False, default=""),
    Column("data", JSON, nullable=False),
)
Index("ix_events_deployment", events.c.deployment_id, events.c.id)

tokens = Table(
    "tokens", metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("access", String(8), nullable=False, default="admin"),  # admin | write | read
    Column("projects", JSON, nullable=True),  # null: every project
)

leases = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", String(36), primary_key=True),
    Column("project", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("digest", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
)
Index("uq_api_keys_project_name", api_keys.c.project, api_keys.c.name, unique=True)

counters = Table(
    "counters", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
)

gateways = Table(
    "gateways", metadata,
    Column("id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),  # the routing version it serves
    Column("seen_at", Float, nullable=False),  # unix time of its last report
    Column("report", JSON, nullable=False),  # in-flight per replica, last request per deployment
)

dialect_records = Table(
    "dialect_records", metadata,
    Column("dialect", String(16), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("project", String(64), nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_dialect_records_project", dialect_records.c.dialect, dialect_records.c.kind,
      dialect_records.c.project)

registry_credentials = Table(
    "registry_credentials", metadata,
    Column("id", String(36), primary_key=True),
    Column("project", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("registry_url", String(255), nullable=False),
    Column("username", String(255), nullable=False),
    Column("password_sealed", Text, nullable=False),  # Fernet token; never plaintext
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("uq_registry_credentials_project_name", registry_credentials.c.project,
      registry_credentials.c.name, unique=True)

secrets = Table(
    "secrets", metadata,
    Column("id", String(36), primary_key=True),
    Column("project", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("type", String(32), nullable=False),
    Column("public", JSON, nullable=False),  # the fields its type shows
    Column("data_sealed", Text, nullable=False),  # Fernet token of the whole data
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("uq_secrets_project_name", secrets.c.project, secrets.c.name, unique=True)

autoscaler = Table(
    "autoscaler", metadata,
    Column("deployment_id", String(36), primary_key=True),
    Column("region", String(63), primary_key=True),
    Column("desired", Integer, nullable=False),  # the count the controller runs
    Column("current", Integer, nullable=False),  # replicas when it was decided
    Column("panic", Boolean, nullable=False),
    Column("reasons", JSON, nullable=False),  # list of strings
    Column("metrics", JSON, nullable=False),  # trigger -> {value, target, age_seconds, ...}
    Column("last_scale_at", Float, nullable=True),  # unix time of the last change of count
    Column("decided_at", Float, nullable=False),  # unix time
)


datasets = Table(
    "datasets", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # TIR names datasets by number
    Column("project", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("url", Text, nullable=True),  # an fsspec URL; None: under the data directory
    Column("description", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("uq_datasets_project_name", datasets.c.project, datasets.c.name, unique=True)

invocations = Table(
    "invocations", metadata,
    Column("id", String(36), primary_key=True),  # the request id
    Column("deployment_id", String(36), nullable=False),
    Column("project", String(64), nullable=False),
    Column("idempotency_key", String(200), nullable=True),  # cleared when it expires
    Column("route", String(64), nullable=False),  # the name the caller used
    Column("path", Text, nullable=False),  # on the replica, with the query
    Column("content_type", String(200), nullable=False, default=""),
    Column("body", LargeBinary, nullable=True),  # dropped once a result is written
    Column("body_size", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("attempt_timeout", Float, nullable=False),
    Column("result_ttl", Float, nullable=False),
    Column("created_at", Float, nullable=False),  # unix times
    Column("started_at", Float, nullable=True),  # the first try
    Column("finished_at", Float, nullable=True),
    Column("next_at", Float, nullable=False),  # QUEUED: not before
    Column("lease_until", Float, nullable=True),  # RUNNING: the lease lapses then
    Column("leased_by", String(128), nullable=True),
    Column("lease_token", Integer, nullable=False, default=0),  # +1 per lease: fences a late try
    Column("status_code", Integer, nullable=True),  # the replica's answer to the last try
    Column("error", Text, nullable=True),  # the last try's error
    Column("dataset", String(64), nullable=True),  # where the result is
    Column("result_path", Text, nullable=True),
    Column("result_size", Integer, nullable=True),
    Column("expires_at", Float, nullable=True),
)
Index("uq_invocations_idempotency", invocations.c.deployment_id, invocations.c.idempotency_key,
      unique=True)
Index("ix_invocations_queue", invocations.c.deployment_id, invocations.c.status,
      invocations.c.next_at)
Index("ix_invocations_created", invocations.c.deployment_id, invocations.c.created_at)
Index("ix_invocations_expires", invocations.c.status, invocations.c.expires_at)
