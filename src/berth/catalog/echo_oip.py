"""catalog/echo's KServe v2 / Open Inference Protocol routes (what TIR's model API relays to):

    GET  /v2                                   server metadata
    GET  /v2/health/live, /v2/health/ready     {"live": true}, {"ready": true}
    GET  /v2/models/{name}[/versions/{v}]      model metadata (any name is served)
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer   the inputs come back as the outputs:
         {"model_name", "id", "outputs": [{"name", "datatype", "shape", "data"}]}

Errors are the protocol's `{"error": message}`. Pure functions of the request (stdlib only,
like the server, which must start fast); `echo.py` does the I/O.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any
from urllib.parse import unquote

from berth import __version__

PREFIX = b"/v2"
PLATFORM = "berth-echo"
DATATYPES = frozenset({"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                       "INT64", "FP16", "FP32", "FP64", "BYTES"})
_MAX_DEPTH = 32  # nested data deeper than this is refused, not recursed into


def is_infer(path: bytes) -> bool:
    return path.startswith(b"/v2/models/") and path.endswith(b"/infer")


def route(method: bytes, path: bytes, body: bytes, *, ready: bool) -> tuple[int, bytes] | None:
    """The answer (status, JSON body) to an OIP request; None when `path` is not one."""
    parts = [unquote(p.decode("utf-8", "replace")) for p in path.split(b"/")[2:]]
    if path == PREFIX or path == PREFIX + b"/":
        return _only(method, b"GET") or _ok({"name": PLATFORM, "version": __version__,
                                             "extensions": []})
    if parts[:1] == ["health"] and len(parts) == 2 and parts[1] in ("live", "ready"):
        live = parts[1] == "live"
        return _only(method, b"GET") or _ok({parts[1]: live or ready}, 200 if live or ready
                                            else 503)
    if parts[:1] != ["models"] or len(parts) < 2 or not parts[1]:
        return None
    name, rest = parts[1], parts[2:]
    version = None
    if rest[:1] == ["versions"] and len(rest) >= 2:
        version, rest = rest[1], rest[2:]
    if not rest:
        return _only(method, b"GET") or _ok({
            "name": name, "versions": [version] if version else [], "platform": PLATFORM,
            "inputs": [], "outputs": []})
    if rest == ["ready"]:
        return _only(method, b"GET") or _ok({"name": name, "ready": ready},
                                            200 if ready else 503)
    if rest == ["infer"]:
        if method != b"POST":
            return _error(405, "infer takes POST")
        try:
            request = json.loads(body)
        except ValueError as exc:
            return _error(400, f"request body is not valid JSON: {exc}")
        except RecursionError:
            return _error(400, "request body is nested too deeply")
        try:
            return _ok(infer(name, version, request))
        except ValueError as exc:
            return _error(400, str(exc))
    return None


def infer(name: str, version: str | None, request: Any) -> dict[str, Any]:
    """The inference response echoing `request`'s inputs; ValueError names a bad field."""
    if not isinstance(request, dict):
        raise ValueError("the request body must be a JSON object with 'inputs'")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ValueError("inputs: must be a non-empty list of tensors")
    outputs = [_tensor(item, f"inputs[{i}]") for i, item in enumerate(inputs)]
    wanted = request.get("outputs")
    if wanted is not None:
        names = [o.get("name") if isinstance(o, dict) else None for o in wanted] if isinstance(
            wanted, list) else None
        known = {o["name"] for o in outputs}
        if names is None or not all(isinstance(n, str) and n in known for n in names):
            raise ValueError("outputs: each requested output must name one of the inputs "
                             f"({', '.join(sorted(known))})")
        outputs = [o for o in outputs if o["name"] in names]
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ValueError("id: must be a string")
    answer: dict[str, Any] = {"model_name": name}
    if version is not None:
        answer["model_version"] = version
    answer["id"] = request_id if request_id is not None else str(uuid.uuid4())
    if isinstance(request.get("parameters"), dict):
        answer["parameters"] = request["parameters"]
    answer["outputs"] = outputs
    return answer


def _tensor(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: must be an object with name, shape, datatype and data")
    name, shape, datatype = item.get("name"), item.get("shape"), item.get("datatype")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.name: must be a non-empty string")
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ValueError(f"{where}.shape: must be a list of non-negative integers")
    if datatype not in DATATYPES:
        raise ValueError(f"{where}.datatype: must be one of {', '.join(sorted(DATATYPES))}")
    if "data" not in item:
        raise ValueError(f"{where}.data: is required")
    data = item["data"]
    count = _count(data, 0, f"{where}.data")
    if count != math.prod(shape):
        raise ValueError(f"{where}.data: has {count} elements; shape {shape} needs "
                         f"{math.prod(shape)}")
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def _count(data: Any, depth: int, where: str) -> int:
    """Elements in (possibly nested) tensor data; a scalar is one."""
    if not isinstance(data, list):
        if isinstance(data, dict) or data is None:
            raise ValueError(f"{where}: must be a list of values")
        return 1
    if depth >= _MAX_DEPTH:
        raise ValueError(f"{where}: is nested deeper than {_MAX_DEPTH} levels")
    return sum(_count(x, depth + 1, where) for x in data)


def _only(method: bytes, allowed: bytes) -> tuple[int, bytes] | None:
    return None if method == allowed else _error(405, f"this route takes {allowed.decode()}")


def _ok(body: dict[str, Any], status: int = 200) -> tuple[int, bytes]:
    return status, json.dumps(body).encode()


def _error(status: int, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"error": message}).encode()
