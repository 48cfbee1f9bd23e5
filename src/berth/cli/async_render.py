"""Tables of datasets, their objects and async requests. Pure: `now` is passed in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from berth.api.v1.models import AsyncRequestOut, DatasetOut, ObjectOut
from berth.cli.render import _table, age, clock, size
from berth.domain.invocations import InvocationStatus

ASYNC_STYLES: dict[str, str] = {
    InvocationStatus.QUEUED: "yellow",
    InvocationStatus.RUNNING: "cyan",
    InvocationStatus.SUCCEEDED: "green",
    InvocationStatus.FAILED: "red",
    InvocationStatus.EXPIRED: "dim",
}


def styled(status: str) -> Text:
    return Text(str(status), style=ASYNC_STYLES.get(status, ""))


def counts_line(counts: Mapping[InvocationStatus, int]) -> Text:
    """`QUEUED 3  RUNNING 1  SUCCEEDED 10  FAILED 0  EXPIRED 0`, each status in its colour."""
    line = Text()
    for status in InvocationStatus:
        if line:
            line.append("  ")
        line.append(status.value, style=ASYNC_STYLES[status])
        line.append(f" {counts.get(status, 0)}")
    return line


def took(r: AsyncRequestOut) -> str:
    """Seconds from the first try to the end; '-' before."""
    if r.started_at is None or r.finished_at is None:
        return "-"
    return f"{max(0.0, (r.finished_at - r.started_at).total_seconds()):.2f}s"


def requests_table(items: Iterable[AsyncRequestOut], now: datetime) -> Table:
    table = _table("ID", "STATUS", "TRIES", "CODE", "ROUTE", "AGE", "TOOK", "REASON")
    for r in items:
        table.add_row(Text(r.id), styled(r.status), f"{r.attempts}/{r.max_attempts}",
                      "-" if r.status_code is None else str(r.status_code), Text(r.route),
                      age(r.created_at, now), took(r), Text(r.error or r.reason))
    return table


def request_detail(r: AsyncRequestOut, now: datetime) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    where = f"{r.dataset}:{r.result_path}" if r.dataset and r.result_path else "-"
    rows: list[tuple[str, Text | str]] = [
        ("ID", r.id),
        ("Deployment", r.deployment),
        ("Status", Text.assemble(styled(r.status), f" ({r.reason})" if r.reason else "")),
        ("Attempts", f"{r.attempts} of {r.max_attempts}"),
        ("Status code", "-" if r.status_code is None else str(r.status_code)),
        ("Error", r.error or "-"),
        ("Route", r.route),
        ("Body", size(r.body_size)),
        ("Created", f"{clock(r.created_at)} ({age(r.created_at, now)} ago)"),
        ("Started", clock(r.started_at)),
        ("Finished", clock(r.finished_at) + (f" (took {took(r)})" if r.finished_at else "")),
        ("Result", f"{where} ({size(r.result_size)})" if r.result_path else "-"),
        ("Expires", clock(r.expires_at)),
    ]
    for key, value in rows:
        grid.add_row(key, Text(value) if isinstance(value, str) else value)
    return grid


def datasets_table(items: Iterable[DatasetOut], now: datetime) -> Table:
    table = _table("NAME", "LOCATION", "DESCRIPTION", "AGE")
    for d in items:
        table.add_row(Text(d.name), Text(d.url or "(data directory)"), Text(d.description),
                      age(d.created_at, now))
    return table


def dataset_detail(d: DatasetOut) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in (("Name", d.name), ("Project", d.project), ("ID", str(d.id)),
                       ("Location", d.url or "(data directory)"),
                       ("Description", d.description or "-"), ("Created", clock(d.created_at))):
        grid.add_row(key, Text(value))
    return grid


def objects_table(items: Iterable[ObjectOut]) -> Table:
    table = _table("PATH", "SIZE", "MODIFIED")
    for o in items:
        table.add_row(Text(o.path), size(o.size), clock(o.modified_at))
    return table
