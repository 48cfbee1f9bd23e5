"""Each dialect's request-field table (docs/dialects/<dialect>.md, `## Request fields`) is
true: every field of the dialect's request models is in it, every field it says is refused
is refused by the API, every field it says acts changes the native spec, and every field it
says is kept is echoed back.

`field_table(path)` is shared: test_field_tables_scale_foundry.py walks the other two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args, get_origin

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[3]
HEADING = "## Request fields"
Handling = Literal["acts", "refused", "kept"]
HANDLINGS: tuple[str, ...] = get_args(Handling)


@dataclass(frozen=True)
class FieldRow:
    """One table row: `field` is the dotted path as the dialect names it (`[]` marks a list
    item); a row covers the fields below it too, unless a more specific row names them."""

    field: str
    handling: Handling
    note: str


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def field_table(path: Path, heading: str = HEADING) -> list[FieldRow]:
    """The rows of the first markdown table under `heading`: columns `field`, `handling`
    (acts, refused or kept: the first word of the cell), then a note. Backticks are
    stripped from the field cell; one cell may name several fields, comma-separated."""
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        start = lines.index(heading)
    except ValueError:
        raise AssertionError(f"{path} has no {heading!r} section") from None
    table = []
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    assert len(table) > 2, f"{path}: no table under {heading!r}"
    header = [c.lower() for c in _cells(table[0])]
    assert header[:2] == ["field", "handling"], f"{path}: columns are {header}"
    rows = []
    for line in table[2:]:
        cells = _cells(line)
        word = re.split(r"\W", cells[1].strip("* "), maxsplit=1)[0].lower()
        assert word in HANDLINGS, f"{path}: {cells[1]!r} is not one of {HANDLINGS}"
        note = cells[2] if len(cells) > 2 else ""
        for name in cells[0].split(","):
            rows.append(FieldRow(name.strip().strip("`"), cast(Handling, word), note))
    return rows


def model_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every field path of a request model, nested models included (`a.b`, `a[].b`)."""
    out = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        path = f"{prefix}{key}"
        out.append(path)
        for inner, suffix in _nested(info.annotation):
            out += model_fields(inner, f"{path}{suffix}.")
    return out


def _nested(annotation: Any) -> list[tuple[type[BaseModel], str]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, "")]
    found = []
    origin = get_origin(annotation)
    for arg in get_args(annotation):
        suffix = "[]" if origin in (list, tuple) else ""
        found += [(m, suffix + s) for m, s in _nested(arg)]
    return found


def row_for(rows: list[FieldRow], path: str) -> FieldRow | None:
    """The most specific row covering `path`."""
    covering = [r for r in rows if path == r.field or path.startswith((r.field + ".",
                                                                       r.field + "[]"))]
    return max(covering, key=lambda r: len(r.field), default=None)


def uncovered(rows: list[FieldRow], models: list[type[BaseModel]]) -> list[str]:
    return [p for m in models for p in model_fields(m) if row_for(rows, p) is None]


def test_field_table_parses_rows_and_covers_by_prefix(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("# X\n\n## Request fields\n\n| field | handling | note |\n|---|---|---|\n"
                   "| `a`, `b.c` | acts | yes |\n| `b` | **kept** and echoed | k |\n"
                   "\n## Next\n| field | handling |\n|---|---|\n| `z` | acts |\n")
    rows = field_table(doc)
    assert rows == [FieldRow("a", "acts", "yes"), FieldRow("b.c", "acts", "yes"),
                    FieldRow("b", "kept", "k")]
    assert row_for(rows, "b.c.d") == FieldRow("b.c", "acts", "yes")
    assert row_for(rows, "b.e") == FieldRow("b", "kept", "k")
    assert row_for(rows, "z") is None and row_for(rows, "ab") is None
