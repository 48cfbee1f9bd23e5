"""The data plane: authenticate, route, balance, stream, hold requests while scaling from zero.

The per-request modules (COMPILED) are built as C extensions by mypyc when Berth is installed
(setup.py). They are loaded only when every one of them is there and newer than its source;
otherwise, or with BERTH_PURE_PYTHON=1, the sources are imported instead: an edited module is
never shadowed by a stale build, and compiled and interpreted modules are never mixed.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

# The per-request path (setup.py reads this tuple). Not metrics.py: it subclasses
# prometheus-client's Collector, which the build environment does not have (mypyc would compile
# a subclass of an unknown class), and it runs per scrape, not per request.
COMPILED = ("accesslog", "balancer", "exchange", "http", "paths", "proxy", "service", "stats",
            "table", "upstream")
NATIVE_GROUP = "berth_gateway__mypyc"  # the extension the compiled modules share
_HERE = Path(__file__).resolve().parent


def _build_is_current() -> bool:
    if os.environ.get("BERTH_PURE_PYTHON") or importlib.util.find_spec(NATIVE_GROUP) is None:
        return False
    for name in COMPILED:
        source = _HERE / f"{name}.py"
        built = [p for suffix in importlib.machinery.EXTENSION_SUFFIXES
                 if (p := _HERE / f"{name}{suffix}").exists()]
        if not built or (source.exists()
                         and source.stat().st_mtime > built[0].stat().st_mtime):
            return False
    return True


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds berth.gateway's compiled modules as their .py sources."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, _HERE / f"{name}.py")


compiled = _build_is_current()
if not compiled:
    sys.meta_path.insert(0, _SourcesFirst())
