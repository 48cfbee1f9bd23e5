"""/v1/projects/{p}/datasets: create, list, get, delete, and the objects (async results),
on the data directory and on an fsspec `memory://` URL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.invocations.datasets import DatasetFiles, open_dataset
from tests.integration.api.app_env import ApiEnv, TestClient

DATASETS = "/v1/projects/p/datasets"


class World:
    def __init__(self, tmp: Path) -> None:
        self.data_dir = tmp / "data"
        self.env = ApiEnv(tmp, data_dir=self.data_dir)
        self.http = self.env.http

    def create(self, name: str, **extra: str) -> dict[str, object]:
        r = self.http.post(DATASETS, json={"name": name, **extra})
        assert r.status_code == 201, r.text
        body: dict[str, object] = r.json()
        return body

    def files(self, name: str) -> DatasetFiles:
        return open_dataset(self.env.app.state.datasets.get("p", name), self.data_dir)

    def token(self, name: str, projects: list[str]) -> TestClient:
        return self.env.project_client(name, projects)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    with w.http:
        yield w
    w.env.close()


def test_create_list_get(world: World) -> None:
    made = world.create("results", description="batch of May")
    assert {k: made[k] for k in ("project", "name", "url", "description")} == {
        "project": "p", "name": "results", "url": None, "description": "batch of May"}
    assert isinstance(made["id"], int) and made["created_at"]
    world.create("another", url="memory://berth-tests/another")
    names = [d["name"] for d in world.http.get(DATASETS).json()["items"]]
    assert names == ["another", "results"]
    assert world.http.get(f"{DATASETS}/results").json() == made
    assert world.http.get("/v1/projects/q/datasets").json() == {"items": []}


def test_create_refuses_a_taken_name_and_bad_fields(world: World) -> None:
    world.create("results")
    taken = world.http.post(DATASETS, json={"name": "results"})
    assert taken.status_code == 409 and "already exists" in taken.json()["error"]["message"]
    for body, field in (({"name": "Bad_Name"}, "name"), ({}, "name"),
                        ({"name": "x", "url": "nope://a/b"}, "url"),
                        ({"name": "x", "url": "s3:/"}, "url"),
                        ({"name": "x", "colour": "red"}, "colour")):
        r = world.http.post(DATASETS, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["details"][0]["field"] == field, r.text
    not_json = world.http.post(DATASETS, content=b"{", headers={
        "Content-Type": "application/json"})
    assert not_json.status_code == 400


def test_unknown_datasets_are_404(world: World) -> None:
    for method, path in (("GET", f"{DATASETS}/ghost"), ("DELETE", f"{DATASETS}/ghost"),
                         ("GET", f"{DATASETS}/ghost/objects"),
                         ("GET", f"{DATASETS}/ghost/objects/a.json")):
        r = world.http.request(method, path)
        assert r.status_code == 404, (method, path, r.text)
        assert "dataset 'ghost' not found in project 'p'" in r.json()["error"]["message"]


def test_objects_are_listed_and_read(world: World) -> None:
    world.create("results")
    files = world.files("results")
    files.write("echo/a.json", b'{"a": 1}')
    files.write("echo/b.txt", b"hello")
    files.write("other/c.bin", b"\x00\x01")
    files.write("top", b"?")
    listed = world.http.get(f"{DATASETS}/results/objects").json()["items"]
    assert [(o["path"], o["size"]) for o in listed] == [
        ("echo/a.json", 8), ("echo/b.txt", 5), ("other/c.bin", 2), ("top", 1)]
    assert all(o["modified_at"] for o in listed)
    prefixed = world.http.get(f"{DATASETS}/results/objects", params={"prefix": "echo/"})
    assert [o["path"] for o in prefixed.json()["items"]] == ["echo/a.json", "echo/b.txt"]
    limited = world.http.get(f"{DATASETS}/results/objects", params={"limit": 1})
    assert [o["path"] for o in limited.json()["items"]] == ["echo/a.json"]
    for path, data, kind in (("echo/a.json", b'{"a": 1}', "application/json"),
                             ("echo/b.txt", b"hello", "text/plain"),
                             ("other/c.bin", b"\x00\x01", "application/octet-stream"),
                             ("top", b"?", "application/octet-stream")):
        r = world.http.get(f"{DATASETS}/results/objects/{path}")
        assert r.status_code == 200, r.text
        assert r.content == data and r.headers["content-type"].startswith(kind), path
        assert r.headers["x-content-type-options"] == "nosniff"


def test_bad_object_paths_and_params(world: World) -> None:
    world.create("results")
    world.files("results").write("echo/a.json", b"{}")
    missing = world.http.get(f"{DATASETS}/results/objects/echo/zz.json")
    assert missing.status_code == 404
    assert "object 'echo/zz.json' not found" in missing.json()["error"]["message"]
    for path in ("echo/%2e%2e/%2e%2e/x", "echo//a.json", "echo/%2e/a.json", "%2fetc/passwd"):
        r = world.http.get(f"{DATASETS}/results/objects/{path}")
        assert r.status_code == 400, (path, r.text)
        assert "path: must be a relative name" in r.json()["error"]["message"]
    bad_prefix = world.http.get(f"{DATASETS}/results/objects", params={"prefix": "../x"})
    assert bad_prefix.status_code == 400 and "path:" in bad_prefix.json()["error"]["message"]
    for params, field in (({"limit": "0"}, "limit"), ({"limit": "10001"}, "limit")):
        r = world.http.get(f"{DATASETS}/results/objects", params=params)
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == field


def test_a_memory_url_dataset_holds_its_objects_there(world: World) -> None:
    url = f"memory://berth-tests/{uuid.uuid4().hex}"
    world.create("mem", url=url)
    world.files("mem").write("echo/r1.json", b'{"ok": true}')
    listed = world.http.get(f"{DATASETS}/mem/objects").json()["items"]
    assert [(o["path"], o["size"]) for o in listed] == [("echo/r1.json", 12)]
    assert world.http.get(f"{DATASETS}/mem/objects/echo/r1.json").json() == {"ok": True}


def test_delete_removes_the_dataset_and_its_local_objects(world: World) -> None:
    world.create("results")
    world.files("results").write("echo/a.json", b"{}")
    root = world.data_dir / "datasets" / "p" / "results"
    assert root.exists()
    r = world.http.delete(f"{DATASETS}/results")
    assert r.status_code == 204 and r.content == b""
    assert world.http.get(f"{DATASETS}/results").status_code == 404
    assert not root.exists()


def test_delete_is_refused_while_a_deployment_sends_results_there(world: World) -> None:
    world.create("results")
    spec = {"name": "echo", "image": "catalog/echo",
            "async": {"enabled": True, "dataset": "results"},
            "containers": [{"region": "local", "scale": {"min": 0, "max": 1}}]}
    assert world.http.post("/v1/projects/p/deployments", json=spec).status_code == 202
    r = world.http.delete(f"{DATASETS}/results")
    assert r.status_code == 409, r.text
    assert "receives the async results of echo" in r.json()["error"]["message"]
    assert world.http.get(f"{DATASETS}/results").status_code == 200


def test_another_projects_token_is_refused(world: World) -> None:
    world.create("results")
    world.files("results").write("a.json", b"{}")
    outsider = world.token("outsider", ["q"])
    with outsider:
        for method, path in (("GET", DATASETS), ("POST", DATASETS),
                             ("GET", f"{DATASETS}/results"), ("DELETE", f"{DATASETS}/results"),
                             ("GET", f"{DATASETS}/results/objects"),
                             ("GET", f"{DATASETS}/results/objects/a.json")):
            r = outsider.request(method, path, json={"name": "x"} if method == "POST" else None)
            assert r.status_code == 403, (method, path, r.text)
        assert outsider.get("/v1/projects/q/datasets/results").status_code == 404
    assert world.http.get(f"{DATASETS}/results").status_code == 200
    reader = world.http.post("/v1/tokens", json={"name": "reader", "projects": ["p"],
                                                 "access": "read"}).json()["secret"]
    headers = {"Authorization": f"Bearer {reader}"}
    assert world.http.get(f"{DATASETS}/results/objects/a.json", headers=headers).json() == {}
    refused = world.http.post(DATASETS, json={"name": "x"}, headers=headers)
    assert refused.status_code == 403
    assert world.http.delete(f"{DATASETS}/results", headers=headers).status_code == 403
