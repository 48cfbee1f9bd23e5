"""Commands that change or show deployments: deploy, ls, get, update, patch, start, ..."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import typer

from berth.api.v1.models import Accepted
from berth.cli import common, render, waiting
from berth.cli.common import IfMatchOpt, NameArg, OutputFormat, OutputOpt, TimeoutOpt, WaitOpt
from berth.cli.setargs import SetArgError, parse_set_args
from berth.client import BerthClient, DeploymentFailed
from berth.domain.status import DeploymentStatus

FileOpt = Annotated[
    str,
    typer.Option(
        "--file", "-f", show_default=False, metavar="FILE",
        help="Deployment spec, YAML or JSON; '-' reads stdin.",
    ),
]


def _finish(
    client: BerthClient, accepted: Accepted, verb: str, wait: bool, timeout: float
) -> None:
    waiting.announce(accepted, verb)
    if wait:
        waiting.wait_for_task(client, accepted, timeout)


def deploy(ctx: typer.Context, file: FileOpt, wait: WaitOpt = True,
           timeout: TimeoutOpt = 600.0) -> None:
    """Create a deployment from a spec file."""
    spec = common.load_spec(file)
    with common.open_client(ctx) as client:
        _finish(client, client.create(spec), "accepted", wait, timeout)


def ls(ctx: typer.Context, output: OutputOpt = OutputFormat.TABLE) -> None:
    """List the project's deployments."""
    with common.open_client(ctx) as client:
        page = client.list()
    if output is not OutputFormat.TABLE:
        common.dump(page.model_dump(mode="json", by_alias=True), output)
    elif not page.items:
        common.say(f"No deployments in project {common.config_of(ctx).project}.")
    else:
        common.show(render.deployments_table(page.items, datetime.now(UTC)))


def get(ctx: typer.Context, name: NameArg, output: OutputOpt = OutputFormat.TABLE) -> None:
    """Show one deployment: status, reason, containers (or all of it as JSON / YAML)."""
    with common.open_client(ctx) as client:
        deployment = client.get(name)
    if output is OutputFormat.TABLE:
        common.show(render.deployment_detail(deployment, datetime.now(UTC)))
    else:
        common.dump(deployment.model_dump(mode="json", by_alias=True), output)


def update(ctx: typer.Context, name: NameArg, file: FileOpt, if_match: IfMatchOpt = None,
           wait: WaitOpt = True, timeout: TimeoutOpt = 600.0) -> None:
    """Replace a deployment's whole spec from a file."""
    spec = common.load_spec(file)
    spec.setdefault("name", name)
    with common.open_client(ctx) as client:
        _finish(client, client.replace(name, spec, if_match=if_match), "updated", wait, timeout)


SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", show_default=False, metavar="KEY=VALUE",
        help="Change one field; dotted keys for nested fields (envs.FOO=bar), YAML values, "
        "null deletes. Repeatable.",
    ),
]


def patch(ctx: typer.Context, name: NameArg, set_: SetOpt = None, if_match: IfMatchOpt = None,
          wait: WaitOpt = True, timeout: TimeoutOpt = 600.0) -> None:
    """Change some fields of a deployment (a JSON merge patch built from --set)."""
    if not set_:
        common.fail("give at least one --set KEY=VALUE", code=2)
    try:
        body = parse_set_args(set_)
    except SetArgError as exc:
        common.fail(str(exc), code=2)
    with common.open_client(ctx) as client:
        _finish(client, client.patch(name, body, if_match=if_match), "patched", wait, timeout)


def _action(verb: str, call: Callable[[BerthClient, str], Accepted], doc: str) -> Callable[
    ..., None
]:
    def command(ctx: typer.Context, name: NameArg, wait: WaitOpt = True,
                timeout: TimeoutOpt = 600.0) -> None:
        with common.open_client(ctx) as client:
            _finish(client, call(client, name), verb, wait, timeout)

    command.__doc__ = doc
    return command


start = _action("starting", BerthClient.start, "Start a stopped deployment.")
stop = _action("stopping", BerthClient.stop, "Stop a deployment's replicas; keep its spec.")
ReplicaOpt = Annotated[
    str | None,
    typer.Option("--replica", "-r", show_default=False, metavar="REPLICA",
                 help="Replace only this replica (an id from 'berth replicas')."),
]


def restart(ctx: typer.Context, name: NameArg, replica: ReplicaOpt = None, wait: WaitOpt = True,
            timeout: TimeoutOpt = 600.0) -> None:
    """Replace every replica, one by one; with --replica, only that one."""
    with common.open_client(ctx) as client:
        accepted = (client.restart_replica(name, replica) if replica
                    else client.restart(name))
        _finish(client, accepted, "restarting", wait, timeout)


def rm(ctx: typer.Context, name: NameArg, wait: WaitOpt = True,
       timeout: TimeoutOpt = 600.0) -> None:
    """Delete a deployment and stop its replicas (alias: delete)."""
    with common.open_client(ctx) as client:
        accepted = client.delete(name)
        waiting.announce(accepted, "deleting")
        if wait:
            waiting.wait_for_delete(client, accepted, timeout)


ForOpt = Annotated[
    str,
    typer.Option(
        "--for", show_default=False, metavar="STATUS",
        help="Status to wait for, e.g. ACTIVE; several as ACTIVE,DISABLED.",
    ),
]


def wait(ctx: typer.Context, name: NameArg, for_: ForOpt, timeout: TimeoutOpt = 600.0) -> None:
    """Wait until a deployment reaches a status; exit 1 on ERROR/FAILED or timeout."""
    wanted = [part.strip().upper() for part in for_.split(",") if part.strip()]
    valid = {s.value for s in DeploymentStatus}
    unknown = [s for s in wanted if s not in valid]
    if unknown or not wanted:
        common.fail(
            f"unknown status {', '.join(unknown) or repr(for_)}; "
            f"expected one of {', '.join(s.value for s in DeploymentStatus)}",
            code=2,
        )
    with common.open_client(ctx) as client, common.err_console.status(
        f"{name}: waiting for {', '.join(wanted)}"
    ) as spinner:
        try:
            deployment = client.wait_status(
                name, wanted, timeout=timeout, poll=common.POLL_SECONDS,
                on_progress=lambda d: spinner.update(f"{name}: {render.progress(d)}"),
            )
        except DeploymentFailed as exc:
            common.fail(str(exc))
    common.say(f"{name}: {render.progress(deployment)}", style="green")


def register(app: typer.Typer) -> None:
    for func in (deploy, ls, get, update, patch):
        common.register(app, func)
    common.register(app, start, name="start")
    common.register(app, stop, name="stop")
    common.register(app, restart, name="restart")
    common.register(app, rm, name="rm")
    common.register(app, rm, name="delete", hidden=True)
    common.register(app, wait)
