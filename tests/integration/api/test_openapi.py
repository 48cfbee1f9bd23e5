"""/openapi.json: a valid document whose operations list the error answers each surface gives,
in the shape that surface's `render_error` produces."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from berth.api.dialects import load_dialects
from berth.api.openapi import DIALECT_SURFACES
from berth.domain.errors import (
    BerthError,
    Conflict,
    Forbidden,
    MalformedBody,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    SpecInvalid,
    Unauthorized,
    Violation,
)
from tests.integration.api.app_env import ApiEnv

ERRORS: list[BerthError] = [
    SpecInvalid([Violation("containers[0].scale", "value_error", "min over max")]),
    MalformedBody([Violation("body", "depth", "nested too deep")]),
    PayloadTooLarge("too large", limit=1024), NotFound("no such thing"), Conflict("taken"),
    Unauthorized("missing credentials"), Forbidden("not this project"),
]


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    env = ApiEnv(Path(tmp_path_factory.mktemp("openapi")))
    with env.http:
        answer = env.http.get("/openapi.json")
    assert answer.status_code == 200
    yield answer.json()
    env.close()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    schemathesis.openapi.from_dict(document).validate()


def test_every_operation_lists_its_error_answers(document: dict[str, Any]) -> None:
    refs = json.dumps(document["components"]["schemas"])
    for path, method, operation in operations(document):
        answers = operation["responses"]
        assert {"400", "401", "403"} <= set(answers), (method, path)
        for status, answer in answers.items():
            if status.startswith(("4", "5")):
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[-1] in document["components"]["schemas"], ref
        if "{" in path:
            assert "404" in answers, (method, path)
    assert "HTTPValidationError" not in refs


def test_body_operations_list_413_and_if_match_operations_412(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert "413" in paths["/v1/projects/{project}/deployments"]["post"]["responses"]
    assert "413" not in paths["/v1/projects/{project}/deployments"]["get"]["responses"]
    assert "412" in paths["/v1/projects/{project}/deployments/{name}"]["put"]["responses"]
    assert "412" not in paths["/v1/projects/{project}/deployments/{name}"]["get"]["responses"]
    assert "413" in paths["/cloud/v3/inference/{project_id}/deployments"]["post"]["responses"]


def test_dialect_operations_name_their_own_shape_and_validation_status(
        document: dict[str, Any]) -> None:
    gcore = document["paths"]["/cloud/v3/inference/{project_id}/deployments"]["post"]
    assert gcore["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/GcoreError")
    assert "422" not in gcore["responses"]  # Gcore answers a bad body 400
    scale = document["paths"]["/v5/models"]["post"]["responses"]
    assert scale["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ScaleError")
    native = document["paths"]["/v1/projects/{project}/deployments"]["post"]["responses"]
    assert native["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")


@pytest.mark.parametrize("dialect", load_dialects(), ids=lambda d: d.__name__.split(".")[-2])
def test_each_dialect_renders_every_error_in_its_documented_shape(dialect: Any) -> None:
    surface = DIALECT_SURFACES[dialect.__name__.split(".")[-2]]
    for error in [*ERRORS, PreconditionFailed("generation moved")]:
        rendered = dialect.render_error(error)
        body = json.loads(rendered.body)
        surface.model.model_validate(body)
        if error.status == 412 and surface is DIALECT_SURFACES["foundry"]:
            continue  # Foundry never reads If-Match
        assert 400 <= rendered.status_code < 500, (error, rendered.status_code, body)
