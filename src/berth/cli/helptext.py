"""`--help` as a reader expects it: `berth rm [OPTIONS] NAME`, and nothing after a flag.

Typer (0.2x) writes a required argument as `{name}` in the usage line and `<bool>` after
every flag, `--help` included; these command classes write `NAME` / `[NAME]` and leave
flags bare. Everything else (panels, types of valued options, ranges) is Typer's own.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


def usage_name(argument: TyperArgument) -> str:
    """`NAME`, `[NAME]` when optional, `NAME...` when it takes several."""
    name = argument.metavar or (argument.name or "arg").upper()
    if not argument.required:
        name = f"[{name}]"
    return f"{name}..." if argument.nargs != 1 else name


def _bare_flags(params: list[Any]) -> list[Any]:
    """Flags take no value, so they show no type (an empty metavar replaces `<bool>`)."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


# `ctx` is click's Context, or the copy Typer vendors (typer._click) since 0.2x: Any
# keeps these overrides valid with either.
class Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _bare_flags(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(usage_name(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _bare_flags(super().get_params(ctx))
