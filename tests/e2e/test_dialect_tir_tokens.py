"""Project-scoped control tokens on the TIR dialect, against a real `berth serve`: a TIR
team and project is the Berth project `tir-{team}-{project}`, and that is the project a
token's scope is checked against (read for GET, write otherwise), never the bare TIR id."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.harness import BerthServer

TEAM, PROJECT = 41, 42
BERTH_PROJECT = f"tir-{TEAM}-{PROJECT}"
GPU = "/myaccount/api/v1/gpu"
BASE = f"{GPU}/teams/{TEAM}/projects/{PROJECT}/serving/inference"


def _token(server: BerthServer, body: dict[str, Any]) -> str:
    with server.client() as admin:
        r = admin.post("/v1/tokens", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["secret"])


def _as(server: BerthServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


def _body(http: httpx.Client, name: str) -> dict[str, Any]:
    sku = http.get(f"{GPU}/gpu_service/sku/").json()["data"]["CPU"][0]
    return {"name": name, "framework": "custom", "sku_id": sku["sku_id"], "replica": 0,
            "custom_endpoint_details": {"container": {"container_name": "catalog/echo"}}}


def _refused(r: httpx.Response, what: str) -> None:
    """TIR's error shape, 403, naming the Berth project."""
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["code"] == 403 and body["data"] == {} and set(body) == {
        "code", "data", "message", "errors"}
    assert what in body["message"], body


def test_tir_routes_check_scope_against_the_berth_project(server: BerthServer) -> None:
    writer = _token(server, {"name": "tir-writer", "projects": [BERTH_PROJECT]})
    reader = _token(server, {"name": "tir-reader", "access": "read",
                             "projects": [BERTH_PROJECT]})
    # Scoped to the bare TIR project id (what the routes used to check), or another project.
    by_id = _token(server, {"name": "tir-by-id", "projects": [str(PROJECT)]})
    other = _token(server, {"name": "tir-other", "projects": [f"tir-{TEAM}-{PROJECT + 1}"]})

    with _as(server, writer) as w:
        r = w.post(f"{BASE}/", json=_body(w, "tir-scoped"))
        assert r.status_code == 200, r.text
        eid = r.json()["data"]["id"]
        listed = w.get(f"{BASE}/")
        assert listed.status_code == 200 and [e["id"] for e in listed.json()["data"]] == [eid]
        got = w.get(f"{BASE}/{eid}/")
        assert got.status_code == 200 and got.json()["data"]["name"] == "tir-scoped"
        # The team and project are read as integers for the scope as for the route.
        padded = f"{GPU}/teams/0{TEAM}/projects/0{PROJECT}/serving/inference/{eid}/"
        assert w.get(padded).status_code == 200
        assert w.put(f"{BASE}/{eid}/", json={"action": "stop"}).status_code == 200
        # Elsewhere the writer is refused, even where an endpoint with that id would be.
        _refused(w.get(f"{GPU}/teams/{TEAM}/projects/{PROJECT + 1}/serving/inference/"),
                 f"tir-{TEAM}-{PROJECT + 1}")
        bad = w.get(f"{GPU}/teams/x/projects/{PROJECT}/serving/inference/")
        assert bad.status_code == 400 and list(bad.json()["errors"]) == ["team"]
        # The SKU list names no project: any token may read it.
        assert w.get(f"{GPU}/gpu_service/sku/").status_code == 200

    with _as(server, reader) as ro:
        assert [e["id"] for e in ro.get(f"{BASE}/").json()["data"]] == [eid]
        assert ro.get(f"{BASE}/{eid}/").status_code == 200
        assert ro.get(f"{BASE}/{eid}/replicas/").status_code == 200
        _refused(ro.post(f"{BASE}/", json=_body(ro, "tir-read-only")), "may not write")
        _refused(ro.put(f"{BASE}/{eid}/", json={"action": "start"}), "may not write")
        _refused(ro.delete(f"{BASE}/{eid}/"), "may not write")
        # The model API checks by method too: a read token may not POST to the endpoint.
        _refused(ro.post(f"/project/p-{PROJECT}/endpoint/is-{eid}/predict", json={}),
                 "may not write")

    for token in (by_id, other):
        with _as(server, token) as x:
            _refused(x.get(f"{BASE}/"), BERTH_PROJECT)
            _refused(x.get(f"{BASE}/{eid}/"), BERTH_PROJECT)
            _refused(x.post(f"{BASE}/", json=_body(x, "tir-elsewhere")), BERTH_PROJECT)
            _refused(x.delete(f"{BASE}/{eid}/"), BERTH_PROJECT)
            # By id alone, another project's endpoint is missing to the token.
            hidden = x.get(f"/project/p-{PROJECT}/endpoint/is-{eid}/healthz")
            assert hidden.status_code == 404 and hidden.json()["code"] == 404, hidden.text

    with _as(server, writer) as w:
        gone = w.delete(f"{BASE}/{eid}/")
        assert gone.status_code == 200, gone.text
        assert w.get(f"{BASE}/").json()["data"] == []
    with server.client() as admin:
        assert admin.get(f"{BASE}/").json()["data"] == []
