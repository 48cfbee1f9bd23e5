"""A small typed body mutator shared by the fuzz tests (no hypothesis needed).

`mutations(body)` walks every field path of a JSON body and yields one changed copy per
mutation (wrong types, a lone surrogate, a huge string, deep nesting, odd numbers, the field
dropped, an unknown field beside it), plus whole-body mutations. `raw_bodies()` yields malformed
raw JSON bodies. Both are deterministic: the same seed gives the same sequence.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from typing import Any, Protocol

Path = tuple[str | int, ...]

LONE_SURROGATE = "\udfff"
HUGE_STRING_CHARS = 1024 * 1024
DEEP_NESTING = 200


def _deep(depth: int) -> Any:
    """A list nested `depth` deep, built without recursion."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _replacements() -> list[tuple[str, Any]]:
    return [
        ("a string", "x"),
        ("an empty string", ""),
        ("an int", 7),
        ("a float", 1.5),
        ("a bool", True),
        ("null", None),
        ("a list", ["x"]),
        ("an empty list", []),
        ("a dict", {"x": 1}),
        ("an empty dict", {}),
        ("a lone surrogate", LONE_SURROGATE),
        ("a lone surrogate inside text", f"a{LONE_SURROGATE}b"),
        ("a 1 MB string", "a" * HUGE_STRING_CHARS),
        (f"a list nested {DEEP_NESTING} deep", _deep(DEEP_NESTING)),
        ("zero", 0),
        ("a negative number", -1),
        ("a huge number", 10**30),
        ("a huge negative number", -(10**30)),
        ("a tiny float", 1e-300),
    ]


def field_paths(body: Any) -> list[Path]:
    """Every path to a value in `body` (dict keys and list indexes), parents first."""
    paths: list[Path] = []
    stack: list[tuple[Path, Any]] = [((), body)]
    while stack:
        path, value = stack.pop()
        if path:
            paths.append(path)
        children: list[tuple[Path, Any]] = []
        if isinstance(value, dict):
            children = [((*path, key), child) for key, child in value.items()]
        elif isinstance(value, list):
            children = [((*path, index), child) for index, child in enumerate(value)]
        stack.extend(reversed(children))
    return paths


def describe(path: Path) -> str:
    """`containers[0].scale` style, the way dialect errors name a field."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "<body>"


def _parent(body: Any, path: Path) -> Any:
    node = body
    for part in path[:-1]:
        node = node[part]
    return node


def _replaced(body: Any, path: Path, value: Any) -> Any:
    changed = copy.deepcopy(body)
    _parent(changed, path)[path[-1]] = value
    return changed


def _dropped(body: Any, path: Path) -> Any:
    changed = copy.deepcopy(body)
    del _parent(changed, path)[path[-1]]
    return changed


def _with_unknown(body: Any, path: Path) -> Any | None:
    """`body` with an unknown key beside `path`, or None when its parent is not an object."""
    changed = copy.deepcopy(body)
    parent = _parent(changed, path)
    if not isinstance(parent, dict):
        return None
    parent["berth_fuzz_unknown"] = "x"
    return changed


def _all_mutations(body: Any) -> Iterator[tuple[str, Any]]:
    whole: list[tuple[str, Any]] = [
        ("whole body: a list", [body]),
        ("whole body: a string", "x"),
        ("whole body: null", None),
        ("whole body: a number", 1),
        ("whole body: an empty object", {}),
        ("whole body: a lone surrogate", LONE_SURROGATE),
    ]
    yield from whole
    if isinstance(body, dict):
        changed = copy.deepcopy(body)
        changed["berth_fuzz_unknown"] = "x"
        yield "unknown field at the top", changed
        changed = copy.deepcopy(body)
        changed[LONE_SURROGATE] = "x"
        yield "a lone surrogate as a key at the top", changed
    for path in field_paths(body):
        name = describe(path)
        for what, value in _replacements():
            yield f"{name}: {what}", _replaced(body, path, value)
        yield f"{name}: dropped", _dropped(body, path)
        if isinstance(path[-1], str):
            unknown = _with_unknown(body, path)
            if unknown is not None:
                yield f"{name}: unknown field beside it", unknown


def mutations(body: Any, *, seed: int = 0, count: int = 200) -> Iterator[tuple[str, Any]]:
    """(what was changed, mutated body): for each field path in `body` (nested dicts/lists),
    replace the value with wrong types (str, int, float, bool, None, list, dict), a lone
    surrogate "\\udfff", a huge string (1 MB), deep nesting, an empty/negative/huge number;
    drop the field; add an unknown field; plus whole-body mutations (list, string, null).
    Deterministic for a seed; at most `count` items.

    When there are more than `count` candidates, the whole-body mutations are always kept and
    a seeded sample of the field mutations fills the rest (in a stable order)."""
    candidates = list(_all_mutations(body))
    if len(candidates) <= count:
        yield from candidates[:count]
        return
    head = [c for c in candidates if c[0].startswith("whole body")][:count]
    rest = [c for c in candidates if not c[0].startswith("whole body")]
    picked = sorted(random.Random(seed).sample(range(len(rest)), count - len(head)))
    yield from head
    for index in picked:
        yield rest[index]


def raw_bodies() -> Iterator[tuple[str, bytes]]:
    """Malformed raw JSON bodies: '[' * 100_000, invalid UTF-8, a lone surrogate escape
    b'{"a": "\\udfff"}', truncated JSON, NaN/Infinity, a 2 MiB body, duplicate keys, BOM."""
    yield "100,000 open brackets", b"[" * 100_000
    yield "100,000 nested arrays, closed", b"[" * 100_000 + b"]" * 100_000
    yield "100,000 nested objects", b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    yield "invalid UTF-8", b'{"name": "\xff\xfe\xfa"}'
    yield "a truncated UTF-8 sequence", b'{"name": "\xe2\x82"}'
    yield "a lone surrogate escape", b'{"a": "\\udfff"}'
    yield "a lone surrogate escape in a key", b'{"\\ud800": 1}'
    yield "a lone surrogate escape, nested", b'{"a": {"b": ["x", "\\udfff"]}}'
    yield "truncated JSON", b'{"name": "x", "image": '
    yield "an unterminated string", b'{"name": "x'
    yield "NaN", b'{"a": NaN}'
    yield "Infinity", b'{"a": Infinity}'
    yield "-Infinity", b'{"a": -Infinity}'
    yield "a 2 MiB body", json.dumps({"name": "a" * (2 * 1024 * 1024)}).encode()
    yield "duplicate keys", b'{"name": "a", "name": 1}'
    yield "a UTF-8 BOM", b'\xef\xbb\xbf{"name": "x"}'
    yield "empty", b""
    yield "whitespace only", b"   "
    yield "not JSON", b"name=x"
    yield "a bare string", b'"x"'
    yield "a bare list", b"[]"
    yield "null", b"null"
    yield "trailing garbage", b'{"name": "x"} garbage'
    yield "a NUL byte", b'{"name": "\x00"}'


def encode(body: Any) -> bytes:
    """The JSON bytes of a mutated body. Send these (`content=encode(body)` with a JSON
    content type), not `json=body`: httpx encodes with `ensure_ascii=False`, so a lone
    surrogate would raise UnicodeEncodeError in the client instead of reaching the server as
    the `\\udfff` escape."""
    return json.dumps(body).encode()


Check = Callable[[Any, str], None]  # (the answer, what was sent)


class Requester(Protocol):
    """An HTTP client: httpx's, or Starlette's TestClient (built on httpx2, whose responses
    are another type with the same surface)."""

    def request(self, method: str, url: str, *, content: bytes,
                headers: dict[str, str]) -> Any: ...


def drive(http: Requester, method: str, url: str, base: Any, check: Check, *,
          headers: dict[str, str], seed: int = 16, count: int = 200) -> int:
    """Every mutation of `base` sent to one route, each answer passed to `check` with what was
    mutated; the number of answers that refused the body (4xx)."""
    refused = 0
    for what, body in mutations(base, seed=seed, count=count):
        answer = http.request(method, url, content=encode(body), headers=headers)
        check(answer, f"{method} {url} {what}")
        refused += answer.status_code >= 400
    return refused


def drive_raw(http: Requester, method: str, url: str, check: Check, *,
              headers: dict[str, str]) -> None:
    """Every malformed raw body sent to one route, each answer passed to `check`."""
    for what, raw in raw_bodies():
        check(http.request(method, url, content=raw, headers=headers), f"{method} {url} {what}")
