"""`berth datasets ...`: where async results are written, and reading them back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from berth.cli import async_render, common
from berth.cli.common import OutputFormat, OutputOpt
from berth.cli.helptext import Group

DatasetArg = Annotated[
    str, typer.Argument(help="Dataset name.", show_default=False, metavar="DATASET")
]

app = typer.Typer(cls=Group, no_args_is_help=True,
                  help="Datasets: named places async results are written to.")


def create(
    ctx: typer.Context,
    name: DatasetArg,
    url: Annotated[
        str | None,
        typer.Option("--url", show_default=False, metavar="URL",
                     help="fsspec URL (s3://bucket/prefix, file:///path); default: a "
                          "directory under the server's data directory."),
    ] = None,
    description: Annotated[
        str, typer.Option("--description", "-d", metavar="TEXT", help="What it holds.")
    ] = "",
) -> None:
    """Create a dataset."""
    with common.open_client(ctx) as client:
        made = client.create_dataset(name, url=url, description=description)
    common.say(f"Created dataset {made.name} ({made.url or 'in the data directory'}).")


def list_(ctx: typer.Context, output: OutputOpt = OutputFormat.TABLE) -> None:
    """List the project's datasets."""
    with common.open_client(ctx) as client:
        items = client.datasets()
    if output is not OutputFormat.TABLE:
        common.dump({"items": [d.model_dump(mode="json") for d in items]}, output)
    elif not items:
        common.say(f"No datasets in project {common.config_of(ctx).project}.")
    else:
        common.show(async_render.datasets_table(items, datetime.now(UTC)))


def get(ctx: typer.Context, name: DatasetArg, output: OutputOpt = OutputFormat.TABLE) -> None:
    """Show one dataset."""
    with common.open_client(ctx) as client:
        found = client.dataset(name)
    if output is OutputFormat.TABLE:
        common.show(async_render.dataset_detail(found))
    else:
        common.dump(found.model_dump(mode="json"), output)


def delete(ctx: typer.Context, name: DatasetArg) -> None:
    """Delete a dataset (and its objects in the data directory); refused while in use."""
    with common.open_client(ctx) as client:
        client.delete_dataset(name)
    common.say(f"Deleted dataset {name}.")


def objects(
    ctx: typer.Context,
    name: DatasetArg,
    prefix: Annotated[
        str, typer.Option("--prefix", metavar="FOLDER",
                          help="Only objects under this folder, e.g. echo/.")
    ] = "",
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=10000, metavar="N",
                          help="Show at most N objects.")
    ] = 1000,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """List a dataset's objects (an async result is FOLDER/REQUEST_ID.json)."""
    with common.open_client(ctx) as client:
        items = client.dataset_objects(name, prefix=prefix, limit=limit)
    if output is not OutputFormat.TABLE:
        common.dump({"items": [o.model_dump(mode="json") for o in items]}, output)
    elif not items:
        common.say(f"No objects in dataset {name}" + (f" under {prefix}." if prefix else "."))
    else:
        common.show(async_render.objects_table(items))


def read(
    ctx: typer.Context,
    name: DatasetArg,
    path: Annotated[
        str, typer.Argument(help="Object path.", show_default=False, metavar="PATH")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", show_default=False, metavar="FILE",
                     help="Write the bytes to FILE instead of stdout."),
    ] = None,
) -> None:
    """Print one object (or write it to a file)."""
    with common.open_client(ctx) as client:
        data = client.read_object(name, path)
    if out is None:
        typer.echo(data, nl=False)  # bytes go to stdout as they are
        return
    try:
        out.write_bytes(data)
    except OSError as exc:
        common.fail(f"cannot write {out}: {exc.strerror or exc}")
    common.err_console.print(f"Wrote {len(data)} bytes to {out}.", soft_wrap=True)


common.register(app, create)
common.register(app, list_, name="list")
common.register(app, get)
common.register(app, delete)
common.register(app, objects)
common.register(app, read)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="datasets")
