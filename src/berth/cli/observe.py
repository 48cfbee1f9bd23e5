"""Commands that only look: replicas, logs, events, autoscaler, flavors, regions."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from typing import Annotated

import typer

from berth.api.v1.models import LogLineOut
from berth.cli import common, render
from berth.cli.common import NameArg, OutputFormat, OutputOpt

MAX_LINES = 100_000  # the most log lines the server returns at once
MAX_EVENTS = 10_000  # the most events the server returns at once


def replicas(ctx: typer.Context, name: NameArg) -> None:
    """List a deployment's replicas with their state, port, pid and usage."""
    with common.open_client(ctx) as client:
        items = client.replicas(name)
    if not items:
        common.say(f"{name} has no replicas.")
        return
    common.show(render.replicas_table(items, datetime.now(UTC)))


def events(
    ctx: typer.Context,
    name: NameArg,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=MAX_EVENTS, metavar="N",
                          help=f"Show the newest N events (at most {MAX_EVENTS}).")
    ] = 50,
) -> None:
    """Show what happened to a deployment: scaling, rollouts, crashes, probes."""
    with common.open_client(ctx) as client:
        items = client.events(name, limit=limit)
    if not items:
        common.say(f"{name} has no events.")
        return
    common.show(render.events_table(items))


def autoscaler(ctx: typer.Context, name: NameArg,
               output: OutputOpt = OutputFormat.TABLE) -> None:
    """Show the autoscaler's latest decision per region: counts, panic, triggers, reasons."""
    with common.open_client(ctx) as client:
        view = client.autoscaler(name)
    if output is OutputFormat.TABLE:
        common.show(render.autoscaler_detail(view, datetime.now(UTC)))
    else:
        common.dump(view.model_dump(mode="json"), output)


def _key(line: LogLineOut) -> tuple[datetime, str, str, str]:
    return (line.ts, line.replica_id, line.stream, line.line)


def fresh_lines(
    stream: Iterable[LogLineOut], after: datetime | None, seen: set[tuple[datetime, str, str, str]]
) -> Iterator[LogLineOut]:
    """Lines of `stream` not already printed: newer than `after`, or at `after` but unseen."""
    for line in stream:
        if after is not None and (line.ts < after or (line.ts == after and _key(line) in seen)):
            continue
        yield line


def logs(
    ctx: typer.Context,
    name: NameArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")
    ] = False,
    since: Annotated[
        float | None,
        typer.Option("--since", min=0, show_default=False, metavar="SECONDS",
                     help="Only lines from the last SECONDS seconds."),
    ] = None,
    tail: Annotated[
        int | None,
        typer.Option("--tail", min=1, show_default=False, metavar="N",
                     help="Show the newest N lines (default 1000)."),
    ] = None,
) -> None:
    """Print a deployment's logs as 'time replica stream | line'."""
    start = time.time() - since if since is not None else None
    with common.open_client(ctx) as client:
        if start is not None and tail is not None:
            # The server gives the oldest lines after `since`; the newest are wanted here.
            backlog = client.logs(name, since=start, limit=MAX_LINES)[-tail:]
        else:
            backlog = client.logs(name, since=start, limit=tail or 1000)
        for line in backlog:
            typer.echo(render.log_line(line))
        if not follow:
            return
        after = backlog[-1].ts if backlog else None
        seen = {_key(line) for line in backlog if line.ts == after}
        stream = client.follow_logs(name, since=after.timestamp() if after else start)
        try:
            with closing(stream):
                for line in fresh_lines(stream, after, seen):
                    typer.echo(render.log_line(line))
        except KeyboardInterrupt:
            return


def flavors(ctx: typer.Context) -> None:
    """List the flavors (named resource sizes) a deployment can ask for."""
    with common.open_client(ctx) as client:
        items = client.flavors()
    common.show(render.flavors_table(items))


def regions(ctx: typer.Context) -> None:
    """List the regions (runtime targets) and their capacity."""
    with common.open_client(ctx) as client:
        items = client.regions()
    common.show(render.regions_table(items))


def register(app: typer.Typer) -> None:
    for func in (replicas, logs, events, autoscaler, flavors, regions):
        common.register(app, func)
