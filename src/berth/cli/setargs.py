"""`--set key=value` arguments into a JSON merge patch (RFC 7396).

Dotted keys build nested objects; values are YAML, so `4` is an int, `true` a bool,
`null` deletes the key, and `[...]` / `{...}` give lists and objects. Values of string
fields and of the `envs` / `labels` maps are kept verbatim (`envs.VERSION=1.0` is the
string "1.0"), except `null` / `~`, which still delete. An empty value is "".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

# Top-level string fields, and maps of strings, whose values are never re-typed by YAML.
STRING_FIELDS = frozenset({"name", "description", "image", "credentials_name", "flavor"})
STRING_MAPS = frozenset({"envs", "labels"})
NULLS = frozenset({"null", "Null", "NULL", "~"})


class SetArgError(ValueError):
    """A `--set` argument that cannot be turned into a patch."""


def parse_key(key: str) -> list[str]:
    if "[" in key or "]" in key:
        raise SetArgError(
            f"--set {key}: list indices are not supported in keys; set the whole list "
            "instead, e.g. --set 'containers=[{region: local, scale: {min: 1, max: 2}}]'"
        )
    parts = key.split(".")
    if not key or any(not part for part in parts):
        raise SetArgError(f"--set {key!r}: the key must be dotted names like envs.FOO")
    return parts


def parse_value(path: list[str], raw: str) -> Any:
    if raw == "":
        return ""
    if raw.strip() in NULLS:
        return None
    verbatim = (len(path) == 1 and path[0] in STRING_FIELDS) or (
        len(path) == 2 and path[0] in STRING_MAPS
    )
    if verbatim:
        return raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SetArgError(f"--set {'.'.join(path)}: value is not valid YAML: {problem}") from None


def parse_set_args(items: Iterable[str]) -> dict[str, Any]:
    """Build one merge patch from `key=value` items; a later item wins on the same key."""
    patch: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SetArgError(f"--set {item!r}: expected key=value")
        path = parse_key(key.strip())
        value = parse_value(path, raw)
        node = patch
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                earlier = ".".join(path[: depth + 1])
                raise SetArgError(
                    f"--set {key}: conflicts with the earlier --set {earlier}=..., "
                    "which is not an object"
                )
            node = child
        node[path[-1]] = value
    return patch
