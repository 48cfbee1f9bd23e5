"""The field tables of docs/dialects/scale.md and foundry.md, checked against the code: every
field of the request models has a row; a `refused` field is refused by the API; an `acts`
field with a native target changes that field of the native spec (compared with the same
request without it); an inference field reaches the request sent to the model."""

from __future__ import annotations

import copy
import json
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from berth.api.dialects.foundry import models as foundry
from berth.api.dialects.scale import models as scale
from berth.domain.platform import Gpu
from tests.unit.dialects.dialect_app import DialectApp

DOCS = Path(__file__).parents[3] / "docs" / "dialects"
HEADING = "## Every request field"
TREATMENTS = ("acts", "refused", "kept and echoed")


def field_table(doc: Path) -> dict[str, tuple[str, str]]:
    """field -> (treatment, native path or "") from the table under HEADING."""
    text = doc.read_text()
    assert HEADING in text, doc
    rows: dict[str, tuple[str, str]] = {}
    for line in text.split(HEADING, 1)[1].splitlines():
        if rows and not line.startswith("|"):
            break
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("Field", "") or set(cells[0]) <= {"-"}:
            continue
        field, treatment, native = cells[0], cells[1], cells[2]
        assert treatment in TREATMENTS, (doc.name, field, treatment)
        assert field not in rows, (doc.name, field, "listed twice")
        rows[field] = (treatment, "" if native == "—" else native)
    return rows


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models inside a field's annotation (through Optional, unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            yield from _models(arg)


def field_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every field of a request model as the wire names it, nested models walked."""
    out: set[str] = set()
    for name, info in model.model_fields.items():
        if info.annotation is type(None):  # a field that may only be absent
            continue
        path = prefix + (info.alias or name)
        nested = list(_models(info.annotation))
        if nested:
            for sub in nested:
                out |= field_paths(sub, path + ".")
        else:
            out.add(path)
    return out


SCALE_REQUESTS = (scale.LaunchCreate, scale.HostedCreate, scale.LlmEngineCreate,
                  scale.PatchModel, scale.InferenceRequest, scale.ChatCompletionRequest,
                  scale.CompletionRequest)
FOUNDRY_REQUESTS = (foundry.CreateModelRequest, foundry.CreateLiveDeploymentRequest,
                    foundry.ReplaceLiveDeploymentRequest,
                    foundry.TransformJsonLiveDeploymentRequest)


@pytest.mark.parametrize(("doc", "requests"), [("scale.md", SCALE_REQUESTS),
                                               ("foundry.md", FOUNDRY_REQUESTS)])
def test_every_request_field_has_a_row(doc: str, requests: tuple[type[BaseModel], ...]) -> None:
    table = field_table(DOCS / doc)
    fields: set[str] = set()
    for model in requests:
        fields |= field_paths(model)
    assert fields - set(table) == set(), "fields without a row"
    assert set(table) - fields == set(), "rows of no field"


def _at(spec: dict[str, Any], path: str) -> Any:
    node: Any = spec
    for part in path.replace("[", ".").replace("]", "").split("."):
        node = node[int(part)] if isinstance(node, list) else (node or {}).get(part)
    return node


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return out


# ---- Scale -------------------------------------------------------------------------------

VC, IMG, INFRA = "vendor_configuration", "vendor_configuration.model_image", (
    "vendor_configuration.model_infra")
T4 = (Gpu(0, "Tesla T4", 15360, "7.5"),)
COMMAND = ["python3", "-m", "http.server", "${PORT}"]
# field -> (the rest of the request, the field's value): the native spec is compared with
# and without the field, on top of the same rest.
SCALE_SAMPLES: dict[str, tuple[dict[str, Any], Any]] = {
    "name": ({}, "another-name"),
    f"{IMG}.registry": ({f"{IMG}.repository": "me/app", f"{IMG}.command": COMMAND}, "ghcr.io"),
    f"{IMG}.repository": ({f"{IMG}.command": COMMAND}, "me/other"),
    f"{IMG}.tag": ({f"{IMG}.repository": "me/app", f"{IMG}.command": COMMAND}, "v2"),
    f"{IMG}.command": ({}, COMMAND),
    f"{IMG}.streaming_command": ({f"{INFRA}.endpoint_type": "streaming"}, COMMAND),
    f"{IMG}.predict_route": ({}, "/p"),
    f"{IMG}.streaming_predict_route": ({}, "/s"),
    f"{IMG}.healthcheck_route": ({}, "/h"),
    f"{IMG}.readiness_delay": ({f"{IMG}.healthcheck_route": "/h"}, 5),
    f"{IMG}.env_vars": ({}, {"A": "b"}),
    f"{INFRA}.endpoint_type": ({}, "streaming"),
    f"{INFRA}.cpus": ({}, "500m"),
    f"{INFRA}.memory": ({}, "512Mi"),
    f"{INFRA}.gpus": ({}, 1),
    f"{INFRA}.gpu_type": ({f"{INFRA}.gpus": 1}, "nvidia-tesla-t4"),
    f"{INFRA}.min_workers": ({f"{INFRA}.max_workers": 3}, 2),
    f"{INFRA}.max_workers": ({}, 3),
    f"{INFRA}.per_worker": ({}, 7),
    f"{INFRA}.labels": ({}, {"team": "ml"}),
    f"{INFRA}.public_inference": ({}, False),
}
SCALE_REFUSED = {f"{INFRA}.high_priority": True}
# Inference fields: (route, the rest of the body, value, what the model's request shows).
SCALE_RELAYED: dict[str, tuple[str, dict[str, Any], Any, str]] = {
    "model": ("/v5/inference", {}, "launch/relayed", "url"),
    "args": ("/v5/inference", {}, {"x": 1}, "whole body"),
    "stream": ("/v5/inference", {}, True, "accept"),
    "inference_configuration.timeout_seconds": ("/v5/inference", {}, 7, "timeout"),
    "inference_configuration.num_retries": ("/v5/inference", {}, 2, "tries"),
    "messages": ("/v5/chat/completions", {}, [{"role": "user", "content": "hi"}], "body"),
    "prompt": ("/v5/completions", {}, "hi", "body"),
}


def _launch(vc: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "relayed", VC: {"model_image": {
        "repository": "catalog/echo"}, "model_infra": {}}}
    for path, value in vc.items():
        body = _set(body, path, value)
    return body


@pytest.fixture
def scale_app(tmp_path: Path) -> Iterator[DialectApp]:
    env = DialectApp(tmp_path, gpus=T4)
    yield env
    env.close()


def _scale_native(env: DialectApp, body: dict[str, Any], project: str) -> dict[str, Any]:
    headers = {"x-api-key": env.token, "x-selected-account-id": project}
    r = env.http.post("/v5/models", content=json.dumps(body), headers=headers)
    assert r.status_code == 200, r.text
    (d,) = env.deployments(project)
    return d.spec.model_dump(mode="json")


def test_scale_fields_that_act_change_the_native_spec(scale_app: DialectApp) -> None:
    table = field_table(DOCS / "scale.md")
    natives = {f: n for f, (t, n) in table.items() if t == "acts" and n}
    assert set(natives) == set(SCALE_SAMPLES)
    for i, (field, (rest, value)) in enumerate(SCALE_SAMPLES.items()):
        without = _scale_native(scale_app, _launch(rest), f"without-{i}")
        with_it = _scale_native(scale_app, _set(_launch(rest), field, value), f"with-{i}")
        assert _at(without, natives[field]) != _at(with_it, natives[field]), field


def test_scale_fields_refused_are_refused(scale_app: DialectApp) -> None:
    table = field_table(DOCS / "scale.md")
    assert {f for f, (t, _) in table.items() if t == "refused"} == set(SCALE_REFUSED)
    headers = {"x-api-key": scale_app.token, "x-selected-account-id": "refused"}
    for field, value in SCALE_REFUSED.items():
        r = scale_app.http.post("/v5/models", headers=headers,
                                content=json.dumps(_set(_launch({}), field, value)))
        assert r.status_code == 422, r.text
        assert ["body", *field.split(".")] in [d["loc"] for d in r.json()["detail"]]
        assert scale_app.deployments("refused") == []


def test_scale_inference_fields_reach_the_model(scale_app: DialectApp) -> None:
    table = field_table(DOCS / "scale.md")
    assert {f for f, (t, n) in table.items() if t == "acts" and not n} >= set(SCALE_RELAYED)
    headers = {"x-api-key": scale_app.token, "x-selected-account-id": "relay"}
    streams = _launch({f"{IMG}.streaming_predict_route": "/s"})
    assert scale_app.http.post("/v5/models", headers=headers,
                               content=json.dumps(streams)).status_code == 200
    bases: dict[str, dict[str, Any]] = {"/v5/inference": {"model": "launch/relayed"},
                                        "/v5/chat/completions": {"model": "relayed",
                                                                 "messages": []},
                                        "/v5/completions": {"model": "relayed", "prompt": ""}}
    failing = iter([503])

    def flaky(request: httpx.Request) -> httpx.Response:
        status = next(failing, 200)
        return httpx.Response(status, json={"echo": json.loads(request.content or b"null")})

    answers = scale_app.relay.handler
    for field, (route, rest, value, shows) in SCALE_RELAYED.items():
        scale_app.relay.handler = flaky if shows == "tries" else answers
        scale_app.relay.requests.clear()
        body = _set(bases[route] | rest, field, value)
        r = scale_app.http.post(route, headers=headers, content=json.dumps(body))
        assert r.status_code == 200, (field, r.text)
        sent = scale_app.relay.requests[-1]
        if shows == "url":
            assert "/relay/sgp-" in str(sent.url), field
        elif shows == "whole body":
            assert json.loads(sent.content) == value, field
        elif shows == "body":
            assert value in json.loads(sent.content).values(), field
        elif shows == "accept":
            assert sent.headers["accept"] == "text/event-stream", field
        elif shows == "timeout":
            assert sent.extensions["timeout"]["read"] == value, field
        else:
            assert len(scale_app.relay.requests) == 2, field  # the 503, then the answer


# ---- Foundry -----------------------------------------------------------------------------

RC = "runtimeConfiguration"
H100 = (Gpu(0, "NVIDIA H100 80GB HBM3", 81559, "9.0"),)
ECHO = {"BERTH_IMAGE": "catalog/echo"}
SCALING = {"scaleUpLoadThreshold": 0.5, "scaleUpDelay": {"value": 1, "unit": "SECONDS"},
           "scaleDownDelay": {"value": 1, "unit": "SECONDS"}}
FOUNDRY_SAMPLES: dict[str, tuple[dict[str, Any], Any]] = {
    f"{RC}.minReplicas": ({f"{RC}.maxReplicas": 3}, 2),
    f"{RC}.maxReplicas": ({}, 3),
    f"{RC}.cpu": ({}, 0.5),
    f"{RC}.memory": ({}, "512MiB"),
    f"{RC}.gpu.count": ({}, 1),
    f"{RC}.gpu.type": ({f"{RC}.gpu.count": 1}, "H100"),
    f"{RC}.threadCount": ({}, 4),
    f"{RC}.scalingConfiguration.scaleUpLoadThreshold": ({f"{RC}.scalingConfiguration": SCALING},
                                                        0.25),
    f"{RC}.scalingConfiguration.scaleDownDelay.value": ({f"{RC}.scalingConfiguration": SCALING},
                                                        30),
    f"{RC}.scalingConfiguration.scaleDownDelay.unit": ({f"{RC}.scalingConfiguration": SCALING},
                                                       "MINUTES"),
    f"{RC}.scalingConfiguration.scaleUpDelay.value": ({f"{RC}.scalingConfiguration": SCALING},
                                                      20),
    f"{RC}.scalingConfiguration.scaleUpDelay.unit": ({f"{RC}.scalingConfiguration": SCALING},
                                                     "MINUTES"),
    f"{RC}.environmentVariables": ({}, ECHO | {"MODE": "a"}),
}


def _replace_body(rest: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {RC: {"minReplicas": 1, "maxReplicas": 1,
                                 "environmentVariables": ECHO}}
    for path, value in rest.items():
        body = _set(body, path, value)
    return body


@pytest.fixture
def foundry_app(tmp_path: Path) -> Iterator[DialectApp]:
    env = DialectApp(tmp_path, gpus=H100)
    yield env
    env.close()


def _foundry_native(env: DialectApp, body: dict[str, Any], branch: str) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {env.token}"}
    model = env.http.post("/api/v2/models", headers=headers, json={
        "name": "m", "parentFolderRid": "ri.compass.main.folder.f"}).json()["rid"]
    r = env.http.post("/api/v2/models/liveDeployments?preview=true", headers=headers,
                      content=json.dumps(body | {"deploymentType": {
                          "modelRid": model, "branch": branch}}))
    assert r.status_code == 200, r.text
    name = [d for d in env.deployments("foundry")
            if d.name == "fd-" + r.json()["rid"].rsplit(".", 1)[1].replace("-", "")[:12]]
    return name[0].spec.model_dump(mode="json")


def test_foundry_fields_that_act_change_the_native_spec(foundry_app: DialectApp) -> None:
    table = field_table(DOCS / "foundry.md")
    natives = {f: n for f, (t, n) in table.items() if t == "acts" and n}
    assert set(natives) == set(FOUNDRY_SAMPLES)
    assert {f for f, (t, _) in table.items() if t == "refused"} == set()
    for i, (field, (rest, value)) in enumerate(FOUNDRY_SAMPLES.items()):
        without = _foundry_native(foundry_app, _replace_body(rest), f"without-{i}")
        with_it = _foundry_native(foundry_app, _set(_replace_body(rest), field, value),
                                  f"with-{i}")
        assert _at(without, natives[field]) != _at(with_it, natives[field]), field


def test_dialect_routes_have_request_schemas(scale_app: DialectApp) -> None:
    paths = scale_app.http.get("/openapi.json").json()["paths"]
    for path, method, field in (
            ("/v5/models", "post", "vendor_configuration"),
            ("/v5/models/{model_id}", "patch", "vendor_configuration"),
            ("/v5/inference", "post", "inference_configuration"),
            ("/v5/chat/completions", "post", "messages"),
            ("/api/v2/models", "post", "parentFolderRid"),
            ("/api/v2/models/liveDeployments", "post", "runtimeConfiguration"),
            ("/api/v2/models/liveDeployments/{rid}", "put", "runtimeConfiguration")):
        schema = paths[path][method]["requestBody"]["content"]["application/json"]["schema"]
        assert field in json.dumps(schema) and "$defs" not in json.dumps(schema), path
