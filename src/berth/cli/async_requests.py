"""`berth async ...`: a deployment's async requests: list and watch them, read one, submit a
file of them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from berth.api.v1.models import AsyncRequestOut
from berth.cli import async_render, common
from berth.cli.common import NameArg, OutputFormat, OutputOpt
from berth.cli.helptext import Group
from berth.client import BerthAPIError, BerthClient, BerthClientError
from berth.domain.invocations import InvocationStatus

PAGE = 1000  # the most requests one list call returns
DONE = (InvocationStatus.SUCCEEDED, InvocationStatus.FAILED, InvocationStatus.EXPIRED)
PENDING = (InvocationStatus.QUEUED, InvocationStatus.RUNNING)
TEXT_RESULT_BYTES = 1024 * 1024  # a larger or binary result is left in the dataset


class DefaultList(Group):
    """`berth async NAME ...` is `berth async list NAME ...`: a first word that names no
    subcommand (nor asks for help) goes to `list`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["list", *args]
        return list(super().parse_args(ctx, args))


app = typer.Typer(cls=DefaultList, no_args_is_help=True,
                  help="A deployment's async requests: berth async NAME lists them.")

StatusOpt = Annotated[
    list[InvocationStatus] | None,
    typer.Option("--status", "-s", case_sensitive=False, show_default=False, metavar="STATUS",
                 help="Only requests in this status (repeat for several)."),
]
WatchTimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0, metavar="SECONDS", help="Seconds to wait at most.")
]


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=common.err_console)


def _deadline(timeout: float) -> Callable[[], None]:
    end = time.monotonic() + timeout

    def check() -> None:
        if time.monotonic() >= end:
            raise TimeoutError(f"still waiting after {timeout:g}s; the requests go on in the "
                               "background")
    return check


def list_(
    ctx: typer.Context,
    name: NameArg,
    status: StatusOpt = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=1000, metavar="N",
                          help="Show the newest N requests.")
    ] = 20,
    watch: Annotated[
        bool, typer.Option("--watch", "-w",
                           help="Show a progress bar of finished/total until none is waiting.")
    ] = False,
    timeout: WatchTimeoutOpt = 86400.0,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """List a deployment's newest async requests, with the count in each status."""
    with common.open_client(ctx) as client:
        if watch:
            watch_backlog(client, name, timeout)
        page = client.async_list(name, status=[s.value for s in status or []], per_page=limit)
    if output is not OutputFormat.TABLE:
        common.dump(page.model_dump(mode="json"), output)
        return
    common.show(async_render.counts_line(page.counts))
    if page.items:
        common.show(async_render.requests_table(page.items, datetime.now(UTC)))
        if page.total > len(page.items):
            common.say(f"({len(page.items)} of {page.total} shown; --limit for more)")
    else:
        common.say(f"No async requests of {name}" + (" in that status." if status else "."))


def watch_backlog(client: BerthClient, name: str, timeout: float) -> None:
    """A progress bar of the requests finished since it started, out of those plus the ones
    still waiting, until none is waiting."""
    check = _deadline(timeout)
    done_at_start = None
    with progress_bar() as bar:
        task = bar.add_task(f"{name}: waiting", total=None)
        while True:
            counts = client.async_list(name, per_page=1).counts
            done = sum(counts.get(s, 0) for s in DONE)
            pending = sum(counts.get(s, 0) for s in PENDING)
            done_at_start = done if done_at_start is None else done_at_start
            finished = max(0, done - done_at_start)
            bar.update(task, completed=finished, total=finished + pending,
                       description=f"{name}: {pending} waiting")
            if pending == 0:
                return
            check()
            time.sleep(common.POLL_SECONDS)


def get(
    ctx: typer.Context,
    name: NameArg,
    request_id: Annotated[
        str, typer.Argument(help="Request id.", show_default=False, metavar="REQUEST_ID")
    ],
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Show one async request and its result."""
    with common.open_client(ctx) as client:
        found = client.async_get(name, request_id)
        if output is not OutputFormat.TABLE:
            common.dump(found.model_dump(mode="json"), output)
            return
        common.show(async_render.request_detail(found, datetime.now(UTC)))
        show_result(client, found)


def show_result(client: BerthClient, r: AsyncRequestOut) -> None:
    if r.result is not None:
        common.say("Result:", style="bold")
        typer.echo(json.dumps(r.result, indent=2, ensure_ascii=False))
        return
    if r.dataset is None or r.result_path is None:
        return
    hint = f"berth datasets read {r.dataset} {r.result_path} --out FILE"
    if r.result_size is not None and r.result_size > TEXT_RESULT_BYTES:
        common.say(f"Result: {r.result_size} bytes; {hint}")
        return
    try:
        data = client.read_object(r.dataset, r.result_path)
    except BerthAPIError as exc:
        if exc.status != 404:
            raise
        common.say("Result: gone (expired or removed)")
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        common.say(f"Result: {len(data)} bytes of binary data; {hint}")
        return
    common.say("Result:", style="bold")
    typer.echo(text)


def read_bodies(path: Path) -> list[tuple[int, bytes]]:
    """(line number, body) of each non-blank line, each checked to be JSON."""
    source = "stdin" if str(path) == "-" else str(path)
    try:
        raw = typer.get_binary_stream("stdin").read() if source == "stdin" else path.read_bytes()
    except OSError as exc:
        common.fail(f"cannot read {source}: {exc.strerror or exc}", code=2)
    bodies: list[tuple[int, bytes]] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError as exc:
            common.fail(f"{source}, line {number}: not JSON ({exc})", code=2)
        bodies.append((number, line.strip()))
    if not bodies:
        common.fail(f"{source} holds no requests (one JSON body a line)", code=2)
    return bodies


@contextmanager
def _ids_written(ids: list[str], ids_out: Path | None) -> Iterator[None]:
    """Whatever happens, the ids accepted so far are printed or written."""
    try:
        yield
    finally:
        if ids_out is None:
            for rid in ids:
                typer.echo(rid)
        else:
            try:
                ids_out.write_text("".join(f"{rid}\n" for rid in ids), encoding="utf-8")
            except OSError as exc:
                common.fail(f"cannot write {ids_out}: {exc.strerror or exc}")


def submit(
    ctx: typer.Context,
    name: NameArg,
    file: Annotated[
        Path, typer.Option("--file", "-f", show_default=False, metavar="FILE",
                           help="JSON Lines: one request body a line; '-' reads stdin.")
    ],
    route: Annotated[
        str, typer.Option("--route", "-r", metavar="ROUTE",
                          help="POST {address}/async/ROUTE (a name of async.target_routes, or "
                               "the replica's path).")
    ] = "predict",
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="BERTH_API_KEY", show_default=False,
                                 metavar="KEY", help="The deployment's API key, if it needs "
                                                     "one.")
    ] = None,
    key_prefix: Annotated[
        str | None, typer.Option("--key-prefix", show_default=False, metavar="PREFIX",
                                 help="Idempotency-Key PREFIX + line number: submitting the "
                                      "file again gives the same requests.")
    ] = None,
    ids_out: Annotated[
        Path | None, typer.Option("--ids-out", show_default=False, metavar="FILE",
                                  help="Write the request ids to FILE, not stdout.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until every request has finished.")
    ] = False,
    timeout: WatchTimeoutOpt = 86400.0,
) -> None:
    """Submit a file of async requests, with a progress bar; print their ids."""
    bodies = read_bodies(file)
    ids: list[str] = []
    with common.open_client(ctx) as client:
        address = client.get(name).address
        if not address:
            common.fail(f"{name} has no gateway address yet; see 'berth get {name}'")
        with _ids_written(ids, ids_out), progress_bar() as bar:
            task = bar.add_task(f"{name}: submitting", total=len(bodies))
            for number, body in bodies:
                key = None if key_prefix is None else f"{key_prefix}{number}"
                ids.append(client.async_submit(address, route, body, idempotency_key=key,
                                               api_key=api_key).request_id)
                bar.advance(task)
        common.err_console.print(f"Submitted {len(ids)} requests to {name}.", soft_wrap=True)
        if wait:
            counts = wait_for(client, name, ids, timeout)
            common.err_console.print(async_render.counts_line(counts), soft_wrap=True)
            if counts.get(InvocationStatus.FAILED):
                raise typer.Exit(1)


def _ids_in(client: BerthClient, name: str, wanted: set[str], since: float,
            statuses: list[str]) -> dict[str, InvocationStatus]:
    """Status of each of `wanted` among the requests created since `since` in `statuses`."""
    found: dict[str, InvocationStatus] = {}
    page = 1
    while True:
        listed = client.async_list(name, status=statuses, since=since, page=page,
                                   per_page=PAGE)
        found.update({r.id: r.status for r in listed.items if r.id in wanted})
        if page * PAGE >= listed.total or not listed.items:
            return found
        page += 1


def wait_for(client: BerthClient, name: str, ids: list[str],
             timeout: float) -> dict[InvocationStatus, int]:
    """A progress bar until each of `ids` has finished; their count per status."""
    wanted = set(ids)
    check = _deadline(timeout)
    # created_at is the server's clock: the window starts at the first request's
    since = client.async_get(name, ids[0]).created_at.timestamp() - 1
    pending = [s.value for s in PENDING]
    with progress_bar() as bar:
        task = bar.add_task(f"{name}: running", total=len(wanted))
        while True:
            waiting = _ids_in(client, name, wanted, since, pending)
            bar.update(task, completed=len(wanted) - len(waiting),
                       description=f"{name}: {len(waiting)} waiting")
            if not waiting:
                break
            check()
            time.sleep(common.POLL_SECONDS)
    statuses = _ids_in(client, name, wanted, since, [])
    for rid in sorted(wanted - set(statuses))[:100]:  # older ones (an idempotency key reused)
        try:
            statuses[rid] = client.async_get(name, rid).status
        except BerthClientError:
            continue
    counts: dict[InvocationStatus, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    return counts


common.register(app, list_, name="list")
common.register(app, get)
common.register(app, submit)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="async")
