"""Against a real `berth serve`: no path reaches a deployment other than the one it names, not
through the TIR relay (which once followed `..%2F` out of its endpoint, with no token at all),
not through the gateway (which routes on the first two segments as sent); and a token of one
project cannot touch another's deployment by its Gcore v2 instance id."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Api, BerthServer, echo_spec, wait_for

TEAM, PROJECT = 1, 2
GPU = "/myaccount/api/v1/gpu"


@pytest.fixture(scope="module")
def world(server: BerthServer) -> Iterator[dict[str, Any]]:
    with server.client() as admin:
        api = Api(admin, project="gw")
        gw = api.create(echo_spec("echo", 1))  # open: no API keys
        sku = admin.get(f"{GPU}/gpu_service/sku/").json()["data"]["CPU"][0]
        tir = admin.post(f"{GPU}/teams/{TEAM}/projects/{PROJECT}/serving/inference/", json={
            "name": "tir-echo", "framework": "custom", "sku_id": sku["sku_id"], "replica": 0,
            "custom_endpoint_details": {"container": {"container_name": "catalog/echo"}}})
        assert tir.status_code == 200, tir.text
        wait_for(lambda: api.serving("echo"), 60, 0.2, "gw/echo serving")
        yield {"instance_id": gw["deployment"]["id"], "tir_id": tir.json()["data"]["id"]}


def _raw(server: BerthServer, target: bytes) -> tuple[int, bytes]:
    """One request with its target exactly as given (httpx would normalise it)."""
    with socket.create_connection(("127.0.0.1", server.gateway_port), timeout=10) as s:
        s.sendall(b"POST " + target + b" HTTP/1.1\r\nhost: gw\r\ncontent-type: "
                  b"application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_the_gateway_answers_ordinary_paths(server: BerthServer,
                                            world: dict[str, Any]) -> None:
    assert _raw(server, b"/gw/echo/predict")[0] == 200


@pytest.mark.parametrize("target", [
    b"/gw/echo/../../e2e/other/predict",  # a normalising proxy sends this to e2e/other
    b"/gw/echo/%2e%2e/%2e%2e/e2e/other/predict",
    b"/gw/echo/%252e%252e/%252e%252e/e2e/other/predict",
    b"/gw/echo/..%5c..%5ce2e%5cother",
    b"/gw/%65cho/predict",  # `gw/echo` to a decoder, another name to the routing table
    b"/gw%2Fecho/x/predict",
])
def test_the_gateway_refuses_targets_a_normalising_proxy_would_route_elsewhere(
        server: BerthServer, world: dict[str, Any], target: bytes) -> None:
    status, body = _raw(server, target)
    assert status == 400, body
    assert b'"bad_request"' in body


@pytest.mark.parametrize("tail", [
    "..%2F..%2Fgw%2Fecho%2Fpredict",
    "x/%2e%2e/%2e%2e/%2e%2e/gw/echo/predict",
    "%252e%252e/%252e%252e/gw/echo/predict",
])
def test_the_tir_relay_never_leaves_its_endpoint(server: BerthServer, world: dict[str, Any],
                                                 tail: str) -> None:
    url = f"{server.url}/project/p-{PROJECT}/endpoint/is-{world['tir_id']}/{tail}"
    r = httpx.post(url, json={"who": "anyone"}, timeout=30)  # no token at all
    assert r.status_code == 400, r.text
    assert r.json()["code"] == 400 and "'..' segment" in r.json()["message"]


def test_a_token_of_another_project_cannot_touch_a_v2_instance(
        server: BerthServer, world: dict[str, Any]) -> None:
    with server.client() as admin:
        made = admin.post("/v1/tokens", json={"name": "seven", "projects": ["7"]})
        assert made.status_code == 201, made.text
    url = f"{server.url}/cloud/v2/inference/deployments/{world['instance_id']}"
    seven = {"Authorization": f"Bearer {made.json()['secret']}"}
    assert httpx.get(url, headers=seven, timeout=30).status_code == 404
    assert httpx.delete(url, headers=seven, timeout=30).status_code == 404
    with server.client() as admin:
        still = admin.get("/v1/projects/gw/deployments/echo").json()
    assert still["desired_state"] == "running" and still["status"] != "DELETING"
