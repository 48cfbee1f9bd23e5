"""schemathesis over every native /v1 operation of the in-process app: no answer is a 5xx,
and each answer has a status, content type and body the OpenAPI document lists.

Two passes: valid requests in one project (creates first, so the reads that follow list what
was stored), then schemathesis' default mix of valid and invalid requests anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from tests.integration.api.app_env import ApiEnv

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = 10  # per operation and pass: the whole test stays well under 90 s on two cores
ORDER = {"POST": 0, "PUT": 1, "PATCH": 2, "GET": 3, "DELETE": 4}


def fuzz(operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode | None,
         project: str | None, headers: dict[str, str]) -> str | None:
    """Runs EXAMPLES generated requests at `operation`: the first failure, or None."""
    strategy = operation.as_strategy(generation_mode=mode) if mode else operation.as_strategy()

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        if project and "project" in (case.path_parameters or {}):
            case.path_parameters["project"] = project
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        run()
    except Exception as exc:  # every operation's failure is collected and reported
        return f"{mode} {operation.label}: {exc}"
    return None


def test_native_api_answers_every_generated_request_as_documented(tmp_path: Path) -> None:
    env = ApiEnv(tmp_path)
    schema = schemathesis.openapi.from_asgi("/openapi.json", env.app).include(
        path_regex="^/v1/")
    loaded = list(schema.get_all_operations())
    operations = sorted((r.ok() for r in loaded if isinstance(r, Ok)),
                        key=lambda op: (ORDER[op.method.upper()], op.path))
    assert len(operations) == len(loaded) > 25
    headers = {"Authorization": f"Bearer {env.token}"}
    failures = [failure for mode, project in ((GenerationMode.POSITIVE, "p"), (None, None))
                for operation in operations
                if (failure := fuzz(operation, mode, project, headers)) is not None]
    env.close()
    assert not failures, "\n\n".join(failures)
