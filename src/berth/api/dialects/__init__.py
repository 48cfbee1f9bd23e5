"""Translators from hosted platforms' APIs onto Berth's services: no logic of their own.

Each dialect is a package with a `routes` module exposing `router` (a FastAPI APIRouter),
`PREFIX` (the path prefix it owns, or a tuple of them) and `render_error` (a BerthError in
its platform's shape).
"""

from __future__ import annotations

import importlib
from types import ModuleType

DIALECTS = ("gcore", "tir", "scale", "foundry")


def load_dialects() -> list[ModuleType]:
    return [importlib.import_module(f"berth.api.dialects.{name}.routes") for name in DIALECTS]
