"""Gcore's registry credentials and secrets through the official SDK (strict response
validation on) against a real `berth serve`; and the native endpoints beside them.

Passwords and secret values go in, never come back in any answer, and are nowhere on disk
in plaintext: the database holds them sealed under the data directory's key."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import gcore
import pytest
from cryptography.fernet import Fernet
from gcore import Gcore
from gcore.types.cloud.inference.secret_create_params import Data

from tests.e2e.harness import BerthServer

PROJECT = 7
PASSWORD = "e2e-Registry-Passw0rd-7f3a"
NEW_PASSWORD = "e2e-Rotated-Passw0rd-91c2"
AWS_SECRET = "e2e/AwsSecretAccessKey+4d1b9"
MASK = "********"


@pytest.fixture
def sdk(server: BerthServer) -> Iterator[Gcore]:
    client = Gcore(api_key=server.token, base_url=server.url, cloud_project_id=PROJECT,
                   cloud_region_id=1, polling_interval_seconds=1, max_retries=0,
                   _strict_response_validation=True)
    yield client
    client.close()


def bytes_on_disk(data_dir: Path) -> bytes:
    """Everything the server wrote: database, write-ahead log, logs, key and token files."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


def sealed_column(data_dir: Path, sql: str) -> str:
    with contextlib.closing(sqlite3.connect(data_dir / "berth.db")) as db:
        row = db.execute(sql).fetchone()
    assert row is not None
    return str(row[0])


def test_sdk_registry_credentials_lifecycle(sdk: Gcore, server: BerthServer) -> None:
    creds = sdk.cloud.inference.registry_credentials
    raw = creds.with_raw_response.create(name="private-hub", registry_url="registry.example.com",
                                         username="robot", password=PASSWORD)
    assert PASSWORD not in raw.text() and "password" not in raw.text()
    created = raw.parse()
    assert (created.name, created.project_id, created.registry_url, created.username) == (
        "private-hub", PROJECT, "registry.example.com", "robot")
    listed = list(creds.list())
    assert [c.name for c in listed] == ["private-hub"]
    assert PASSWORD not in creds.with_raw_response.list().text()
    got = creds.with_raw_response.get("private-hub")
    assert PASSWORD not in got.text() and got.parse().username == "robot"

    # At rest: sealed under <data-dir>/credentials.key (0600), and it opens again for a pull.
    key_file = server.data_dir / "credentials.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert PASSWORD.encode() not in bytes_on_disk(server.data_dir)
    sealed = sealed_column(server.data_dir, "SELECT password_sealed FROM registry_credentials "
                                            "WHERE name = 'private-hub'")
    opened = json.loads(Fernet(key_file.read_bytes().strip()).decrypt(sealed.encode()))
    assert opened == {"for": f"registry:{PROJECT}/private-hub", "value": PASSWORD}

    replaced = creds.with_raw_response.replace("private-hub", registry_url="ghcr.io",
                                               username="bot", password=NEW_PASSWORD)
    assert NEW_PASSWORD not in replaced.text()
    assert (replaced.parse().registry_url, replaced.parse().username) == ("ghcr.io", "bot")
    assert creds.get("private-hub").registry_url == "ghcr.io"
    on_disk = bytes_on_disk(server.data_dir)
    assert NEW_PASSWORD.encode() not in on_disk and PASSWORD.encode() not in on_disk

    with pytest.raises(gcore.ConflictError):
        creds.create(name="private-hub", registry_url="ghcr.io", username="x", password="y")
    with pytest.raises(gcore.BadRequestError) as bad:
        creds.create(name="Bad_Name", registry_url="ghcr.io", username="x", password="y")
    assert bad.value.response.headers["x-should-retry"] == "false"
    assert "name" in bad.value.response.text
    creds.delete("private-hub")
    with pytest.raises(gcore.NotFoundError):
        creds.get("private-hub")
    with pytest.raises(gcore.NotFoundError):
        creds.delete("private-hub")
    assert list(creds.list()) == []


def test_sdk_secrets_lifecycle(sdk: Gcore, server: BerthServer) -> None:
    secrets = sdk.cloud.inference.secrets
    data: Data = {"aws_access_key_id": "AKIAE2EEXAMPLE", "aws_secret_access_key": AWS_SECRET}
    raw = secrets.with_raw_response.create(name="aws-dev", type="aws-iam", data=data)
    assert AWS_SECRET not in raw.text()
    created = raw.parse()
    assert (created.name, created.type) == ("aws-dev", "aws-iam")
    assert created.data.aws_access_key_id == "AKIAE2EEXAMPLE"
    assert created.data.aws_secret_access_key == MASK
    assert [s.name for s in secrets.list()] == ["aws-dev"]
    assert secrets.get("aws-dev").data.aws_secret_access_key == MASK
    assert AWS_SECRET not in secrets.with_raw_response.list().text()
    assert AWS_SECRET.encode() not in bytes_on_disk(server.data_dir)

    rotated: Data = {"aws_access_key_id": "AKIAROTATED", "aws_secret_access_key": "rotated-e2e-key"}
    replaced = secrets.replace("aws-dev", type="aws-iam", data=rotated)
    assert replaced.data.aws_access_key_id == "AKIAROTATED"
    assert replaced.data.aws_secret_access_key == MASK
    assert b"rotated-e2e-key" not in bytes_on_disk(server.data_dir)

    with pytest.raises(gcore.BadRequestError) as unknown:
        secrets.create(name="gcp", type="gcp-sa", data=data)
    assert "aws-iam" in unknown.value.response.text
    with pytest.raises(gcore.ConflictError):
        secrets.create(name="aws-dev", type="aws-iam", data=data)
    secrets.delete("aws-dev")
    with pytest.raises(gcore.NotFoundError):
        secrets.get("aws-dev")


def test_deployment_credentials_name_must_exist(sdk: Gcore, server: BerthServer) -> None:
    deployments = sdk.cloud.inference.deployments
    flavor = sdk.cloud.inference.flavors.list().results[0].name
    spec = {"image": "catalog/echo", "listening_port": 8080, "flavor_name": flavor,
            "containers": [{"region_id": 1, "scale": {"min": 0, "max": 1}}]}
    with pytest.raises(gcore.BadRequestError) as missing:
        deployments.create(name="pull-echo", credentials_name="hub",
                           **spec)  # type: ignore[arg-type]
    assert "credentials_name" in missing.value.response.text
    assert missing.value.response.headers["x-should-retry"] == "false"
    sdk.cloud.inference.registry_credentials.create(
        name="hub", registry_url="registry.example.com", username="robot", password=PASSWORD)
    deployments.create(name="pull-echo", credentials_name="hub", **spec)  # type: ignore[arg-type]
    assert deployments.get("pull-echo").credentials_name == "hub"
    with pytest.raises(gcore.BadRequestError):
        deployments.update("pull-echo", credentials_name="elsewhere")
    # Gcore documents no refusal, so credentials a deployment names can be deleted.
    sdk.cloud.inference.registry_credentials.delete("hub")
    deployments.delete_and_poll("pull-echo", polling_timeout_seconds=60)


def test_native_endpoints(server: BerthServer) -> None:
    with server.client() as http:
        base = "/v1/projects/team-n/registry-credentials"
        body = {"name": "hub", "registry_url": "registry.example.com", "username": "robot",
                "password": PASSWORD}
        r = http.post(base, json=body)
        assert r.status_code == 201, r.text
        assert set(r.json()) == {"name", "registry_url", "username", "created_at",
                                 "updated_at"}
        assert http.post(base, json=body).status_code == 409
        listed = http.get(base)
        assert [c["name"] for c in listed.json()["items"]] == ["hub"]
        assert PASSWORD not in listed.text
        r = http.put(f"{base}/hub", json={**body, "username": "bot"})
        assert r.status_code == 200 and r.json()["username"] == "bot"
        bad = http.post(base, json={**body, "name": "two", "registry_url": "a b"})
        assert bad.status_code == 422
        assert {d["field"] for d in bad.json()["error"]["details"]} == {"registry_url"}
        assert http.delete(f"{base}/hub").status_code == 204
        assert http.get(f"{base}/hub").status_code == 404

        secrets = "/v1/projects/team-n/secrets"
        r = http.post(secrets, json={"name": "aws", "type": "aws-iam", "data": {
            "aws_access_key_id": "AKIA", "aws_secret_access_key": AWS_SECRET}})
        assert r.status_code == 201, r.text
        assert r.json()["data"] == {"aws_access_key_id": "AKIA", "aws_secret_access_key": MASK}
        assert AWS_SECRET not in http.get(f"{secrets}/aws").text
        assert http.delete(f"{secrets}/aws").status_code == 204

        # One store underneath: what the Gcore dialect creates, the native API lists.
        r = http.post(f"/cloud/v3/inference/{PROJECT}/registry_credentials",
                      headers={"Authorization": f"APIKey {server.token}"},
                      json={**body, "name": "shared"})
        assert r.status_code == 200, r.text
        native = http.get(f"/v1/projects/{PROJECT}/registry-credentials/shared")
        assert native.status_code == 200 and native.json()["username"] == "robot"
        assert http.delete(f"/v1/projects/{PROJECT}/registry-credentials/shared"
                           ).status_code == 204
