"""`berth`: the command line, over `berth.client.BerthClient`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from berth.cli import async_requests, common, datasets, deployments, doctor, keys, observe
from berth.cli.helptext import Group
from berth.client import DEFAULT_PROJECT, DEFAULT_URL

app = typer.Typer(
    name="berth",
    cls=Group,
    help="Run model inference endpoints on your own machines.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Option("--url", envvar="BERTH_URL", metavar="URL", help="Berth API address.")
    ] = DEFAULT_URL,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="BERTH_TOKEN", show_default=False, metavar="TOKEN",
            help="API token; default: the admin-token file in --data-dir.",
        ),
    ] = None,
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir", envvar="BERTH_DATA_DIR", metavar="DIR",
            help="The server's data directory.",
        ),
    ] = Path(".berth"),
    project: Annotated[
        str, typer.Option("--project", "-p", envvar="BERTH_PROJECT", metavar="NAME",
                          help="Project.")
    ] = DEFAULT_PROJECT,
) -> None:
    """Run model inference endpoints on your own machines."""
    ctx.obj = common.Config(url=url, token=token, project=project, data_dir=data_dir)


class ImageRuntimeMode(StrEnum):
    AUTO = "auto"
    PODMAN = "podman"
    NONE = "none"


def serve(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", show_default=False, metavar="DIR",
                     help="Where state, logs and the admin token live (default: global)."),
    ] = None,
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="API listen address.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, metavar="PORT", help="API port.")
    ] = 8000,
    gateway_port: Annotated[
        int, typer.Option("--gateway-port", min=0, max=65535, metavar="PORT",
                          help="Inference gateway port.")
    ] = 8001,
    domain: Annotated[
        str | None, typer.Option("--domain", metavar="DOMAIN",
                                   help="Also route the host DEPLOYMENT.PROJECT.DOMAIN.")
    ] = None,
    region_id: Annotated[
        int, typer.Option("--region-id", min=1, envvar="BERTH_REGION_ID", metavar="N",
                          help="This machine's region number in APIs that name regions by "
                               "number (Gcore's region_id).")
    ] = 1,
    image_runtime: Annotated[
        ImageRuntimeMode,
        typer.Option("--image-runtime", envvar="BERTH_IMAGE_RUNTIME",
                     help="Run images in podman containers: auto (where podman is usable), "
                          "podman (required), none.")
    ] = ImageRuntimeMode.AUTO,
    podman_config: Annotated[
        Path | None,
        typer.Option("--podman-config", envvar="BERTH_PODMAN_CONFIG", show_default=False,
                     metavar="FILE", help="A containers.conf of its own for podman "
                                          "(CONTAINERS_CONF); see `berth doctor`."),
    ] = None,
) -> None:
    """Run the API, the controller and the inference gateway in this process."""
    from berth.settings import Settings

    settings = Settings(
        data_dir=data_dir or common.config_of(ctx).data_dir,
        host=host,
        port=port,
        gateway_port=gateway_port,
        domain=domain,
        region_id=region_id,
        image_runtime=image_runtime.value,
        podman_config=podman_config,
    )
    from berth.server import run_server  # imported here: the server is heavy to import

    run_server(settings)


def gateway(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", show_default=False, metavar="DIR",
                     help="Data directory of the store (default: global)."),
    ] = None,
    database_url: Annotated[
        str, typer.Option("--database-url", envvar="BERTH_DATABASE_URL", metavar="URL",
                          help="The store, if not the data directory's SQLite file.")
    ] = "",
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Listen address.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, metavar="PORT", help="Port.")
    ] = 8001,
    domain: Annotated[
        str | None, typer.Option("--domain", metavar="DOMAIN",
                                   help="Also route the host DEPLOYMENT.PROJECT.DOMAIN.")
    ] = None,
) -> None:
    """Run the inference gateway alone (several can run side by side on one store)."""
    from berth.server import run_gateway
    from berth.settings import Settings

    run_gateway(Settings(data_dir=data_dir or common.config_of(ctx).data_dir,
                         database_url=database_url, host=host, gateway_port=port,
                         domain=domain))


common.register(app, serve)
common.register(app, gateway)
doctor.register(app)
deployments.register(app)
observe.register(app)
keys.register(app)
datasets.register(app)
async_requests.register(app)


def main() -> None:
    app(prog_name="berth")


if __name__ == "__main__":
    main()
