"""Builds the gateway's per-request path as C extensions with mypyc, when it can.

The modules stay plain, typed Python (the same files run uncompiled). Compiled, each request
costs less than half the CPU (`python bench/gateway_hotpath.py`). Without a C compiler, or with
BERTH_PURE_PYTHON=1 set at install time, Berth installs as pure Python and runs the same.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup

GATEWAY = Path("src/berth/gateway")


def compiled_modules() -> list[str]:
    """berth/gateway/__init__.py's COMPILED, read as text: the build environment does not
    have Berth's dependencies, so the package cannot be imported here."""
    tree = ast.parse((GATEWAY / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "COMPILED" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise RuntimeError("berth/gateway/__init__.py has no COMPILED")


def gateway_extensions() -> list[Any]:
    if os.environ.get("BERTH_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("berth: mypyc is not installed; the gateway stays pure Python", file=sys.stderr)
        return []
    # Type checking is CI's `mypy --strict src`; here mypy only gives mypyc the types, so the
    # project's config (and its pydantic plugin, absent from the build environment) is left out.
    options = ["--config-file=", "--ignore-missing-imports", "--follow-imports=silent"]
    paths = [str(GATEWAY / f"{name}.py") for name in compiled_modules()]
    try:
        extensions = mypycify([*options, *paths], opt_level="3", debug_level="0",
                              group_name="berth_gateway")
    except BaseException as exc:  # mypy reports errors by SystemExit
        print(f"berth: compiling the gateway failed ({exc!r}); it stays pure Python",
              file=sys.stderr)
        return []
    for ext in extensions:
        ext.optional = True  # no compiler: skip, and berth.gateway imports its sources
    return extensions


setup(ext_modules=gateway_extensions())
