"""`berth doctor`: is this machine ready for the container runtime (podman, runc, config)?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from berth.cli import common
from berth.runtime import podman_doctor, podman_setup

# Tests replace it with a host over a fake command runner.
make_host = podman_doctor.DoctorHost.real


def doctor(
    fix: Annotated[
        bool, typer.Option("--fix", help="Write the podman settings Berth needs first.")
    ] = False,
    run_check: Annotated[
        bool, typer.Option("--run-check", help="Also run a container (no image needed).")
    ] = False,
    podman_config: Annotated[
        Path | None,
        typer.Option("--podman-config", envvar="CONTAINERS_CONF", show_default=False,
                     metavar="FILE",
                     help="The one containers.conf podman reads (default: the system's "
                          "files; --fix writes a drop-in beside them)."),
    ] = None,
) -> None:
    """Check podman, runc, slirp4netns, podman's config and store; exit 1 if anything is wrong."""
    host = make_host(podman_config)
    if fix:
        try:
            written = (podman_setup.write_config(host.facts, podman_config, merge=True)
                       if podman_config else podman_setup.write_config(host.facts))
        except (OSError, ValueError) as exc:
            common.fail(f"cannot write the podman config: {exc}")
        common.say(f"wrote {written}")
    checks = podman_doctor.diagnose(host, run_check=run_check)
    common.show(render(checks))
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


def render(checks: list[podman_doctor.Check]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("CHECK")
    table.add_column("STATUS")
    table.add_column("DETAIL", overflow="fold")
    for check in checks:
        detail = check.detail + (f"\nfix: {check.hint}" if check.hint and not check.ok else "")
        status = Text("ok", style="green") if check.ok else Text("FAIL", style="red bold")
        table.add_row(check.name, status, detail)
    return table


def register(app: typer.Typer) -> None:
    common.register(app, doctor)
