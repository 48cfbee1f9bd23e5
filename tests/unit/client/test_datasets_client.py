"""BerthClient's dataset methods over httpx.MockTransport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from berth.client import BerthAPIError, BerthClient
from tests.unit.client.test_client import T0, Server, ok

DATASETS = "/v1/projects/default/datasets"


def dataset_json(name: str = "results", **extra: Any) -> dict[str, Any]:
    return {"id": 1, "project": "default", "name": name, "url": None, "description": "",
            "created_at": T0, **extra}


def test_create_dataset(client: BerthClient, server: Server) -> None:
    server.on("POST", DATASETS, ok(dataset_json(url="s3://b/p"), 201))
    made = client.create_dataset("results", url="s3://b/p", description="May")
    assert made.url == "s3://b/p" and made.created_at.year == 2024
    assert json.loads(server.last.content) == {"name": "results", "url": "s3://b/p",
                                               "description": "May"}
    client.create_dataset("results")
    assert json.loads(server.last.content) == {"name": "results", "description": ""}


def test_list_get_and_delete_datasets(client: BerthClient, server: Server) -> None:
    server.on("GET", DATASETS, ok({"items": [dataset_json("a"), dataset_json("b")]}))
    server.on("GET", f"{DATASETS}/a", ok(dataset_json("a")))
    server.on("DELETE", f"{DATASETS}/a", httpx.Response(204))
    assert [d.name for d in client.datasets()] == ["a", "b"]
    assert client.dataset("a").name == "a"
    client.delete_dataset("a")
    assert server.last.method == "DELETE"


def test_delete_in_use_raises_the_conflict(client: BerthClient, server: Server) -> None:
    server.on("DELETE", f"{DATASETS}/a", ok({"error": {
        "code": "conflict", "message": "dataset 'a' receives the async results of echo"}}, 409))
    with pytest.raises(BerthAPIError) as exc:
        client.delete_dataset("a")
    assert exc.value.status == 409 and "echo" in exc.value.message


def test_objects_send_prefix_and_limit(client: BerthClient, server: Server) -> None:
    server.on("GET", f"{DATASETS}/a/objects", ok({"items": [
        {"path": "echo/r1.json", "size": 12, "modified_at": T0},
        {"path": "echo/r2.json", "size": 3, "modified_at": None}]}))
    items = client.dataset_objects("a", prefix="echo/", limit=2)
    assert [(o.path, o.size) for o in items] == [("echo/r1.json", 12), ("echo/r2.json", 3)]
    assert dict(server.last.url.params) == {"prefix": "echo/", "limit": "2"}
    client.dataset_objects("a")
    assert dict(server.last.url.params) == {"limit": "1000"}


def test_read_object_returns_the_bytes_and_quotes_segments(client: BerthClient,
                                                           server: Server) -> None:
    server.on("GET", f"{DATASETS}/a/objects/echo/r 1.bin",
              httpx.Response(200, content=b"\x00\x01",
                             headers={"Content-Type": "application/octet-stream"}))
    assert client.read_object("a", "echo/r 1.bin") == b"\x00\x01"
    assert server.last.url.raw_path.decode() == f"{DATASETS}/a/objects/echo/r%201.bin"
    assert server.last.headers["Accept"] == "*/*"
    server.on("GET", f"{DATASETS}/a/objects/echo/../x", httpx.Response(200, content=b"?"))
    client.read_object("a", "echo/../x")  # sent as it is: the server answers 400
    assert server.last.url.raw_path.decode() == f"{DATASETS}/a/objects/echo/%2E%2E/x"
