"""Auth, validation (422 naming the field, nothing stored), If-Match, platform endpoints."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.harness import Api, BerthServer, echo_spec

BAD: list[tuple[dict[str, Any], str]] = [
    ({**echo_spec("abc")}, "name"),
    ({**echo_spec("bad-port"), "listening_port": 70000}, "listening_port"),
    ({**echo_spec("bad-timeout"), "timeout": -5}, "timeout"),
    ({**echo_spec("bad-scale"), "containers": [{"scale": {"min": 3, "max": 1}}]},
     "containers[0].scale"),
    ({**echo_spec("bad-memory"), "resources": {"memory": "lots"}}, "resources.memory"),
    ({**echo_spec("bad-probe"), "probes": {"readiness": {"http_get": {}, "tcp_socket": {}}}},
     "probes.readiness"),
    ({**echo_spec("bad-gpu"), "resources": {"gpus": 1, "gpu_type": "nvidia-hopper-h100"}},
     "resources.gpu_type"),
    ({**echo_spec("bad-threads"), "resources": {"threads": 100000}}, "resources.threads"),
    ({**echo_spec("bad-auth"), "api_keys": ["k1"], "auth_enabled": True}, "body"),
    ({**echo_spec("bad-image"), "image": "nginx:latest"}, "command"),
    ({**echo_spec("bad-region"), "containers": [{"region": "eu-west"}]}, "containers[0].region"),
]


@pytest.mark.parametrize(("spec", "field"), BAD, ids=[f for _, f in BAD])
def test_bad_spec_is_422_naming_the_field_and_stores_nothing(api: Api, spec: dict[str, Any],
                                                             field: str) -> None:
    count = api.http.get(api.base).json()["count"]
    r = api.http.post(api.base, json=spec)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_spec"
    assert field in [d["field"] for d in error["details"]], error
    assert api.http.get(api.base).json()["count"] == count
    assert api.http.get(f"{api.base}/{spec['name']}").status_code == 404


def test_bad_update_changes_nothing(api: Api) -> None:
    api.task(api.create(echo_spec("echo-keep", 1))["task_id"])
    before = api.get("echo-keep")
    for body in ({"listening_port": 0}, {"containers": [{"scale": {"min": 5, "max": 1}}]},
                 {"name": "other-name"}, ["not", "an", "object"]):
        r = api.http.patch(f"{api.base}/echo-keep", json=body)
        assert r.status_code == 422, r.text
    r = api.http.put(f"{api.base}/echo-keep", json={**echo_spec("echo-keep"), "timeout": -1})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "timeout"
    r = api.http.post(api.base, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "body"
    after = api.get("echo-keep")
    assert after["generation"] == before["generation"] and after["envs"] == before["envs"]


def test_if_match_and_put_round_trip(api: Api) -> None:
    api.task(api.create(echo_spec("echo-match", 1))["task_id"])
    current = api.http.get(f"{api.base}/echo-match")
    assert current.headers["etag"] == '"1"'
    body = current.json()
    body["description"] = "replaced"
    stale = api.http.put(f"{api.base}/echo-match", json=body, headers={"If-Match": '"7"'})
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "precondition_failed"
    ok = api.http.put(f"{api.base}/echo-match", json=body, headers={"If-Match": '"1"'})
    assert ok.status_code == 202 and ok.json()["deployment"]["generation"] == 2
    patched = api.http.patch(f"{api.base}/echo-match", json={"labels": {"team": "ml"}},
                             headers={"If-Match": "1",
                                      "Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 412
    assert api.get("echo-match")["description"] == "replaced"
    dup = api.http.post(api.base, json=echo_spec("echo-match", 1))
    assert dup.status_code == 409


def test_auth_required(server: BerthServer) -> None:
    url = f"{server.url}/v1/projects/e2e/deployments"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        r = httpx.get(url, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert httpx.get(url, headers={"Authorization": f"apikey {server.token}"}).status_code == 200
    assert httpx.get(url, headers={"Authorization": f"APIKey {server.token}"}).status_code == 200
    assert httpx.get(f"{server.url}/v1/tasks/nope",
                     headers={"Authorization": f"Bearer {server.token}"}).status_code == 404
    assert (server.data_dir / "admin-token").stat().st_mode & 0o777 == 0o600
    for log in (server.data_dir / "berth.log", server.output):
        assert server.token not in log.read_text()


def test_platform_endpoints_and_openapi(api: Api, server: BerthServer) -> None:
    regions = api.http.get("/v1/regions").json()["items"]
    assert regions[0]["name"] == "local" and regions[0]["cpus"] >= 1
    flavors = api.http.get("/v1/flavors").json()["items"]
    assert flavors and flavors[0]["memory_bytes"] > 0
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/v1/projects/{project}/deployments" in spec["paths"]
    assert "DeploymentSpec" in spec["components"]["schemas"]
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_scoped_control_tokens(api: Api, server: BerthServer) -> None:
    def make(body: dict[str, Any]) -> str:
        r = api.http.post("/v1/tokens", json=body)
        assert r.status_code == 201, r.text
        assert "secret" not in str(api.http.get("/v1/tokens").json())
        return str(r.json()["secret"])

    reader = make({"name": "e2e-reader", "access": "read", "projects": ["e2e"]})
    writer = make({"name": "e2e-writer", "projects": ["e2e"]})
    url = f"{server.url}/v1/projects"

    def call(method: str, path: str, token: str, **kw: Any) -> int:
        return httpx.request(method, f"{url}/{path}", headers={
            "Authorization": f"Bearer {token}"}, **kw).status_code

    assert call("GET", "e2e/deployments", reader) == 200
    assert call("GET", "other/deployments", reader) == 403
    assert call("POST", "e2e/deployments", reader, json=echo_spec("read-only", 1)) == 403
    assert call("POST", "other/deployments", writer, json=echo_spec("elsewhere", 1)) == 403
    assert call("POST", "e2e/deployments", writer, json=echo_spec("by-writer", 0)) == 202
    refused = httpx.get(f"{server.url}/v1/tokens", headers={"Authorization": f"Bearer {writer}"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert api.http.delete("/v1/tokens/e2e-writer").status_code == 204
    assert call("GET", "e2e/deployments", writer) == 401
    assert api.http.delete("/v1/tokens/admin").status_code == 409
