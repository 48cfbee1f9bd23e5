"""docs/cli.md documents every command and option of the Typer app, and only those."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

from berth.cli.main import app

CLI_MD = Path(__file__).parents[3] / "docs" / "cli.md"
HEADING = re.compile(r"^### .*$", re.MULTILINE)


def _group() -> TyperGroup:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return group


def _sections() -> dict[str, str]:
    """Each `### `berth CMD`` heading's text, up to the next heading of any level."""
    text = CLI_MD.read_text(encoding="utf-8")
    sections: dict[str, str] = {}
    for match in HEADING.finditer(text):
        rest = text[match.end():]
        following = re.search(r"^#{1,3} ", rest, re.MULTILINE)
        body = rest[: following.start()] if following else rest
        for name in re.findall(r"`berth ([a-z-]+)`", match.group()):
            assert name not in sections, f"docs/cli.md has two sections for berth {name}"
            sections[name] = match.group() + body
    return sections


def _mentions(text: str, token: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", text) is not None


def _visible() -> list[str]:
    return [name for name, command in _group().commands.items() if not command.hidden]


def test_every_command_has_a_section_and_every_section_a_command() -> None:
    sections = _sections()
    assert sorted(sections) == sorted(_visible())


@pytest.mark.parametrize("name", _visible())
def test_a_command_section_names_each_option_argument_and_env_var(name: str) -> None:
    section = _sections()[name]
    command = _group().commands[name]
    missing: list[str] = []
    for param in command.params:
        if isinstance(param, TyperOption):
            words = [*param.opts, *param.secondary_opts]
            if isinstance(param.envvar, str):
                words.append(param.envvar)
        elif isinstance(param, TyperArgument):
            words = [param.metavar or (param.name or "").upper()]
        else:
            words = []
        missing += [word for word in words if not _mentions(section, word)]
    assert not missing, f"docs/cli.md, berth {name}: not documented: {missing}"


def test_hidden_aliases_are_named() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    hidden = [name for name, command in _group().commands.items() if command.hidden]
    assert hidden  # `delete`, the alias of `rm`
    assert all(f"`berth {name}`" in text for name in hidden)


def test_the_global_options_are_in_their_table() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    table = text[text.index("## Global options"):text.index("## Running the server")]
    for param in _group().params:
        assert isinstance(param, TyperOption)
        for word in [*param.opts, *([param.envvar] if isinstance(param.envvar, str) else [])]:
            assert _mentions(table, word), f"global option {word} is not in docs/cli.md"
