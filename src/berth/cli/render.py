"""Tables and one-line summaries of the API's models. Pure: `now` is passed in."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from berth.api.v1.models import (
    ApiKeyOut,
    AutoscalerOut,
    AutoscalerRegionOut,
    DeploymentOut,
    EventOut,
    FlavorOut,
    LogLineOut,
    RegionOut,
    ReplicaOut,
)
from berth.domain.status import DeploymentStatus, ReplicaState

STATUS_STYLES: dict[str, str] = {
    DeploymentStatus.ACTIVE: "green",
    DeploymentStatus.NEW: "yellow",
    DeploymentStatus.PENDING: "yellow",
    DeploymentStatus.DEPLOYING: "yellow",
    DeploymentStatus.PARTIALLYDEPLOYED: "yellow",
    DeploymentStatus.ERROR: "red",
    DeploymentStatus.FAILED: "red",
    DeploymentStatus.DISABLED: "dim",
    DeploymentStatus.DELETING: "dim",
    DeploymentStatus.DELETED: "dim",
    ReplicaState.RUNNING: "green",
    ReplicaState.PENDING: "yellow",
    ReplicaState.STARTING: "yellow",
    ReplicaState.BACKOFF: "red",
    ReplicaState.DRAINING: "dim",
    ReplicaState.STOPPING: "dim",
    ReplicaState.STOPPED: "dim",
}


IDENTIFIERS = frozenset({"NAME", "ID", "REPLICA"})


def _table(*columns: str) -> Table:
    """A borderless table; on a narrow terminal names and ids never wrap, the rest may."""
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, no_wrap=column in IDENTIFIERS)
    return table


def styled(status: str) -> Text:
    return Text(str(status), style=STATUS_STYLES.get(status, ""))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def age(then: datetime | None, now: datetime) -> str:
    """'42s', '5m', '3h', '2d' since `then`; '-' when unknown."""
    if then is None:
        return "-"
    seconds = max(0, int((_utc(now) - _utc(then)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def clock(moment: datetime | None) -> str:
    """A timestamp in local time, to the second."""
    if moment is None:
        return "-"
    return _utc(moment).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def size(n: int | None) -> str:
    """Bytes as '512B', '3.0MiB', '48MiB', '1.5GiB'."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f}{unit}" if unit == "B" or value >= 10 else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TiB"


def _dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def ready_counts(deployment: DeploymentOut) -> tuple[int, int]:
    ready = sum(c.deploy_status.ready for c in deployment.containers)
    total = sum(c.deploy_status.total for c in deployment.containers)
    return ready, total


def progress(deployment: DeploymentOut) -> str:
    """'DEPLOYING 1/2 ready · waiting for readiness'."""
    ready, total = ready_counts(deployment)
    text = f"{deployment.status} {ready}/{total} ready"
    return f"{text} · {deployment.status_reason}" if deployment.status_reason else text


def deployments_table(items: Iterable[DeploymentOut], now: datetime) -> Table:
    table = _table("NAME", "STATUS", "READY", "GENERATION", "IMAGE", "AGE")
    for d in items:
        ready, total = ready_counts(d)
        generation = str(d.generation)
        if d.observed_generation != d.generation:
            generation += f" (at {d.observed_generation})"
        table.add_row(
            Text(d.name), styled(d.status), f"{ready}/{total}", generation, Text(d.image),
            age(d.created_at, now),
        )
    return table


def deployment_detail(d: DeploymentOut, now: datetime) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    ready, total = ready_counts(d)
    since = f" for {age(d.status_since, now)}" if d.status_since else ""
    resources = d.flavor or (
        f"cpu={d.resources.cpu:g} memory={d.resources.memory} gpus={d.resources.gpus}"
        if d.resources else None
    )
    rows: list[tuple[str, Text | str]] = [
        ("Name", d.name),
        ("Project", d.project),
        ("ID", d.id),
        ("Status", Text.assemble(styled(d.status), f" ({ready}/{total} ready){since}")),
        ("Reason", _dash(d.status_reason)),
        ("Desired", str(d.desired_state)),
        ("Generation", f"{d.generation} (observed {d.observed_generation})"),
        ("Image", d.image),
        ("Command", " ".join(d.command) if d.command else "-"),
        ("Port", str(d.listening_port)),
        ("Resources", _dash(resources)),
        ("Endpoint", f"{d.endpoint_type} {d.routes.predict}"),
        ("Address", _dash(d.address)),
        ("Created", f"{clock(d.created_at)} ({age(d.created_at, now)} ago)"),
        ("Updated", clock(d.updated_at)),
    ]
    if d.description:
        rows.insert(1, ("Description", d.description))
    for key, value in rows:
        grid.add_row(key, Text(value) if isinstance(value, str) else value)
    containers = _table("REGION", "READY", "DESIRED", "MIN", "MAX", "ERROR")
    for c in d.containers:
        containers.add_row(
            Text(c.region), f"{c.deploy_status.ready}/{c.deploy_status.total}",
            _dash(c.desired), str(c.scale.min), str(c.scale.max),
            Text(_dash(c.error_message), style="red"),
        )
    return Group(grid, Text(""), Text("Containers", style="bold"), containers)


TRIGGER_STYLES = {"ok": "green", "idle": "dim", "stale": "yellow", "unavailable": "red"}


def number(value: float | None) -> str:
    """5.0 -> '5', 1.25 -> '1.25', 0.3333 -> '0.33'; '-' when unknown."""
    return "-" if value is None else f"{value:.2f}".rstrip("0").rstrip(".")


def autoscaler_detail(view: AutoscalerOut, now: datetime) -> RenderableType:
    """Per region: the counts and bounds, panic, last scale; its triggers; the reasons."""
    parts: list[RenderableType] = []
    for region in view.regions:
        if parts:
            parts.append(Text(""))
        parts.extend(_autoscaler_region(region, now))
    return Group(*parts) if parts else Text("No regions.")


def _autoscaler_region(r: AutoscalerRegionOut, now: datetime) -> list[RenderableType]:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    last = (f"{clock(r.last_scale_at)} ({age(r.last_scale_at, now)} ago)"
            if r.last_scale_at else "never")
    decided = f"{clock(r.decided_at)} ({age(r.decided_at, now)} ago)" if r.decided_at else "-"
    for key, value in (
        ("Region", Text(r.region)), ("Current", str(r.current)), ("Desired", str(r.desired)),
        ("Min", str(r.min)), ("Max", str(r.max)),
        ("Panic", Text("yes", style="red") if r.panic else "no"),
        ("Last scale", last), ("Decided", decided),
    ):
        grid.add_row(key, value)
    parts: list[RenderableType] = [grid]
    if r.metrics:
        metrics = _table("TRIGGER", "VALUE", "TARGET", "AGE", "WANTS", "STATUS")
        for key, m in sorted(r.metrics.items()):
            style = TRIGGER_STYLES.get(m.status.split(":", 1)[0], "")
            metrics.add_row(Text(key), number(m.value), number(m.target),
                            "-" if m.age_seconds is None else f"{number(m.age_seconds)}s",
                            _dash(m.wants), Text(m.status, style=style))
        parts += [Text(""), metrics]
    if r.reasons:
        parts += [Text(""), Text("Reasons", style="bold"),
                  *(Text(f"  {reason}") for reason in r.reasons)]
    return parts


def replicas_table(items: Iterable[ReplicaOut], now: datetime) -> Table:
    table = _table("ID", "STATE", "READY", "PORT", "PID", "RESTARTS", "CPU%", "MEM", "STARTED")
    for r in items:
        state = styled(r.state)
        if r.reason and not (r.state is ReplicaState.RUNNING and r.ready):
            state.append(f" ({r.reason})", style="dim")
        stats = r.stats
        table.add_row(
            Text(r.id), state, "yes" if r.ready else "no", _dash(r.port), _dash(r.pid),
            str(r.restarts),
            f"{stats.cpu_percent:.1f}" if stats else "-",
            size(stats.memory_bytes) if stats else "-",
            age(r.started_at, now),
        )
    return table


def events_table(items: Iterable[EventOut]) -> Table:
    table = _table("AT", "KIND", "REPLICA", "REASON", "MESSAGE")
    for e in items:
        table.add_row(clock(e.at), Text(e.kind), Text(_dash(e.replica_id)), Text(e.reason),
                      Text(e.message))
    return table


def flavors_table(items: Iterable[FlavorOut]) -> Table:
    table = _table("NAME", "CPU", "MEMORY", "GPUS", "GPU MODEL", "GPU MEMORY", "DESCRIPTION")
    for f in items:
        table.add_row(
            Text(f.name), f"{f.cpu:g}", f.memory, str(f.gpus), Text(_dash(f.gpu_model)),
            size(f.gpu_memory_mib * 1024 * 1024) if f.gpu_memory_mib else "-",
            Text(f.description),
        )
    return table


def regions_table(items: Iterable[RegionOut]) -> Table:
    table = _table("NAME", "RUNTIME", "IMAGES", "CPUS", "MEMORY", "GPUS")
    for r in items:
        gpus = ", ".join(f"{g.index}: {g.model} ({size(g.memory_mib * 1024 * 1024)})"
                         for g in r.gpus)
        table.add_row(
            Text(r.name), Text(r.runtime), "yes" if r.runs_images else "no", str(r.cpus),
            size(r.memory_bytes), Text(gpus or "-"),
        )
    return table


def api_keys_table(items: Iterable[ApiKeyOut], now: datetime) -> Table:
    table = _table("NAME", "PREFIX", "EXPIRES", "AGE", "DESCRIPTION")
    for k in items:
        expires = clock(k.expires_at)
        if k.expires_at is not None and _utc(k.expires_at) <= _utc(now):
            expires += " (expired)"
        table.add_row(Text(k.name), Text(k.prefix + "…"), expires, age(k.created_at, now),
                      Text(_dash(k.description)))
    return table


def log_line(line: LogLineOut) -> str:
    """'2024-05-01T12:00:00.123+00:00 r-abc stdout | text'."""
    ts = _utc(line.ts).astimezone().isoformat(timespec="milliseconds")
    return f"{ts} {line.replica_id} {line.stream} | {line.line.rstrip(chr(10))}"
