"""What every command shares: the global options, the client factory, output, errors."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec

import typer
import yaml
from rich.console import Console, RenderableType

from berth.cli.helptext import Command
from berth.client import (
    BerthAPIError,
    BerthClient,
    BerthClientError,
    BerthConnectionError,
    token_from_data_dir,
)

# Markup is off: names, reasons and log lines from the server are printed as they are.
console = Console(highlight=False, markup=False)
err_console = Console(stderr=True, highlight=False, markup=False)

POLL_SECONDS = 0.5
PIPE_WIDTH = 1000
P = ParamSpec("P")


@dataclass(frozen=True)
class Config:
    """The global options. `token` is never printed."""

    url: str
    token: str | None
    project: str
    data_dir: Path

    def resolved_token(self) -> str | None:
        if self.token:
            return self.token
        try:
            return token_from_data_dir(self.data_dir)
        except OSError as exc:
            fail(f"cannot read the admin token in {self.data_dir}: {exc.strerror or exc}")

    def __repr__(self) -> str:
        return f"Config(url={self.url!r}, project={self.project!r}, data_dir={self.data_dir!r})"


def make_client(config: Config) -> BerthClient:
    """The one place the CLI builds a client; tests replace it."""
    return BerthClient(config.url, token=config.resolved_token(), project=config.project)


def open_client(ctx: typer.Context) -> BerthClient:
    return make_client(config_of(ctx))


def config_of(ctx: typer.Context) -> Config:
    config = ctx.find_object(Config)
    if config is None:  # a command invoked without the app's callback
        config = Config("http://127.0.0.1:8000", None, "default", Path(".berth"))
    return config


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


NameArg = Annotated[
    str, typer.Argument(help="Deployment name.", show_default=False, metavar="NAME")
]
WaitOpt = Annotated[
    bool, typer.Option("--wait/--no-wait", help="Wait until the change has converged.")
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0, metavar="SECONDS", help="Seconds to wait at most.")
]
IfMatchOpt = Annotated[
    int | None,
    typer.Option(
        "--if-match", show_default=False, metavar="N",
        help="Only apply if the deployment is still at generation N (else HTTP 412).",
    ),
]
OutputOpt = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="Output format.", case_sensitive=False)
]


def show(renderable: RenderableType) -> None:
    """Print a table; when piped, at its natural width instead of cutting it to 80 columns."""
    if console.is_terminal:
        console.print(renderable)
    else:
        Console(file=sys.stdout, width=PIPE_WIDTH, highlight=False, markup=False).print(renderable)


def say(message: str, style: str | None = None) -> None:
    console.print(message, style=style, soft_wrap=True)


def fail(message: str, code: int = 1, details: list[str] | None = None) -> NoReturn:
    """Print `Error: message` (and indented details) in red to stderr and exit."""
    err_console.print(f"Error: {message}", style="red", soft_wrap=True)
    for line in details or []:
        err_console.print(f"  {line}", style="red", soft_wrap=True)
    raise typer.Exit(code)


def report(exc: BaseException) -> NoReturn:
    """Turn a client error into a message and an exit code: 2 for 4xx, 1 otherwise."""
    if isinstance(exc, BerthAPIError):
        details = [f"{d.field}: {d.message}" if d.field else d.message for d in exc.details]
        details = [line for line in details if line != exc.message]  # already said
        fail(exc.message, 2 if exc.is_client_error else 1, details)
    if isinstance(exc, BerthConnectionError):
        fail(
            f"cannot connect to {exc.url} ({exc.reason})",
            details=[f"is 'berth serve' running at {exc.url}? (set --url or BERTH_URL)"],
        )
    fail(str(exc) or type(exc).__name__)


def handled(func: Callable[P, None]) -> Callable[P, None]:
    """Report client errors once, as `Error: ...` and an exit code, instead of a traceback."""

    @functools.wraps(func)
    def command(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            func(*args, **kwargs)
        except (BerthClientError, TimeoutError) as exc:
            report(exc)

    return command


def register(
    app: typer.Typer, func: Callable[..., None], name: str | None = None, hidden: bool = False
) -> None:
    app.command(name=name, hidden=hidden, cls=Command)(handled(func))


def dump(data: Any, fmt: OutputFormat) -> None:
    """Print plain data as JSON or YAML on stdout, untouched by rich."""
    if fmt is OutputFormat.YAML:
        typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
    else:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def load_spec(path: str) -> dict[str, Any]:
    """A spec from a YAML or JSON file, or from stdin when `path` is '-'."""
    source = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror or exc}", code=2)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        fail(f"{source} is not valid YAML or JSON", code=2, details=[str(exc)])
    if not isinstance(data, dict):
        fail(f"{source} must hold a mapping (a deployment spec), not {type(data).__name__}", 2)
    return {str(key): value for key, value in data.items()}
