"""API keys for the project's inference endpoints: key-create, keys, key-rm."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from berth.cli import common, render
from berth.cli.common import OutputFormat, OutputOpt

KeyArg = Annotated[
    str, typer.Argument(help="API key name.", show_default=False, metavar="NAME")
]


def key_create(
    ctx: typer.Context,
    name: KeyArg,
    description: Annotated[
        str, typer.Option("--description", "-d", metavar="TEXT",
                            help="What or who the key is for.")
    ] = "",
    expires_at: Annotated[
        str | None,
        typer.Option("--expires-at", show_default=False, metavar="WHEN",
                     help="ISO 8601 time the key stops working (UTC if no offset)."),
    ] = None,
) -> None:
    """Create an API key and print its secret (shown only this once)."""
    with common.open_client(ctx) as client:
        created = client.create_api_key(name, description=description, expires_at=expires_at)
    project = common.config_of(ctx).project
    common.err_console.print(
        f"Created API key {created.name} in project {project}. Copy the secret now: it "
        "will not be shown again. Callers send it as 'Authorization: Bearer <secret>' or "
        "'X-Api-Key: <secret>'.", style="yellow", soft_wrap=True)
    typer.echo(created.secret)


def keys(ctx: typer.Context, output: OutputOpt = OutputFormat.TABLE) -> None:
    """List the project's API keys (names and prefixes; never secrets)."""
    with common.open_client(ctx) as client:
        items = client.api_keys()
    if output is not OutputFormat.TABLE:
        common.dump({"items": [k.model_dump(mode="json") for k in items]}, output)
    elif not items:
        common.say(f"No API keys in project {common.config_of(ctx).project}.")
    else:
        common.show(render.api_keys_table(items, datetime.now(UTC)))


def key_rm(ctx: typer.Context, name: KeyArg) -> None:
    """Delete an API key; callers using it are refused from then on."""
    with common.open_client(ctx) as client:
        client.delete_api_key(name)
    common.say(f"Deleted API key {name}.")


def register(app: typer.Typer) -> None:
    common.register(app, key_create, name="key-create")
    common.register(app, keys)
    common.register(app, key_rm, name="key-rm")
