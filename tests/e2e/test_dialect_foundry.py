"""The official Foundry SDK (foundry-platform-sdk) against a real `berth serve`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import foundry_sdk
import httpx
import pytest
from foundry_sdk import Config, FoundryClient, UserTokenAuth
from foundry_sdk.v2.models import errors as model_errors

from tests.e2e.harness import BerthServer, wait_for

FOLDER = "ri.compass.main.folder.0a1b2c3d-0000-4000-8000-000000000000"
ECHO = {"BERTH_IMAGE": "catalog/echo"}


def _client(server: BerthServer, token: str) -> FoundryClient:
    return FoundryClient(auth=UserTokenAuth(token), hostname=f"127.0.0.1:{server.port}",
                         config=Config(scheme="http"))


def _config(**extra: Any) -> dict[str, Any]:
    return {"minReplicas": 1, "maxReplicas": 1, "cpu": 0.5, "memory": "256MiB",
            "sources": [], "environmentVariables": dict(ECHO)} | extra


def test_sdk_lifecycle(server: BerthServer) -> None:
    models = _client(server, server.token).models
    live = models.LiveDeployment
    model = models.Model.create(name="echo-model", parent_folder_rid=FOLDER)
    assert model.rid.startswith("ri.models.main.model.")
    created = live.create(deployment_type={"type": "direct", "modelRid": model.rid,
                                           "branch": "master"},
                          runtime_configuration=_config(), preview=True)
    rid = created.rid
    assert rid.startswith("ri.foundry-ml-live.main.live-deployment.")
    assert created.model_version.model_rid == model.rid
    assert created.branch == "master"
    ready = wait_for(lambda: (d := live.get(rid, preview=True)).status.is_ready and d, 60,
                     what="ACTIVE and ready")
    assert ready.status.state == "ACTIVE"
    assert ready.runtime_configuration.environment_variables["BERTH_IMAGE"] == "catalog/echo"
    listed = live.list(model_rid=model.rid, preview=True).data
    assert [d.rid for d in listed] == [rid]
    assert live.list(model_rid=model.rid, branch="other", preview=True).data == []

    out = live.transform_json(rid, input={"x": [1, 2]}, preview=True).output
    assert out["echo"] == {"x": [1, 2]}

    # Seed 003's runtimeConfiguration, plus the image Berth runs.
    seed = {"minReplicas": 1, "maxReplicas": 3, "cpu": 1.0, "memory": "256MiB",
            "threadCount": 32, "sources": [], "environmentVariables": dict(ECHO)}
    replaced = live.replace(rid, runtime_configuration=seed, preview=True)
    conf = replaced.runtime_configuration
    assert (conf.min_replicas, conf.max_replicas, conf.cpu, conf.memory, conf.thread_count) == (
        1, 3, 1.0, "256MiB", 32)
    native = httpx.get(f"{server.url}/v1/projects/foundry/deployments",
                       headers={"Authorization": f"Bearer {server.token}"}).json()
    assert any(d["name"].startswith("fd-") for d in native["items"]), native

    live.disable(rid, preview=True)
    wait_for(lambda: live.get(rid, preview=True).status.state == "DISABLED", 30,
             what="DISABLED")
    assert live.get(rid, preview=True).status.is_ready is False
    live.start(rid, preview=True)
    wait_for(lambda: live.get(rid, preview=True).status.is_ready, 60, what="ready again")
    assert live.transform_json(rid, input={"y": 1}, preview=True).output["echo"] == {"y": 1}


def test_sdk_sees_foundry_errors(server: BerthServer) -> None:
    models = _client(server, server.token).models
    live = models.LiveDeployment
    model = models.Model.create(name="errors-model", parent_folder_rid=FOLDER)
    target = {"type": "direct", "modelRid": model.rid, "branch": "master"}

    with pytest.raises(model_errors.ThreadCountTooHigh) as threads:
        live.create(deployment_type=target, runtime_configuration=_config(threadCount=100000),
                    preview=True)
    assert threads.value.parameters["providedThreadCount"] == 100000
    assert threads.value.parameters["maxThreadCount"] < 100000

    with pytest.raises(model_errors.InvalidGpuCount) as count:  # this machine has no GPUs
        live.create(deployment_type=target, runtime_configuration=_config(gpu={"count": 1}),
                    preview=True)
    assert count.value.parameters == {"providedGpuCount": 1, "maxGpuCount": 0}

    with pytest.raises(model_errors.GpuTypeNotAvailable) as kind:
        live.create(deployment_type=target,
                    runtime_configuration=_config(gpu={"count": 1, "type": "H100"}),
                    preview=True)
    assert kind.value.parameters["requestedGpuType"] == "H100"
    assert kind.value.parameters["availableGpuTypes"] == []

    missing = "ri.foundry-ml-live.main.live-deployment.00000000-0000-4000-8000-000000000000"
    with pytest.raises(model_errors.LiveDeploymentNotFound) as nf:
        live.get(missing, preview=True)
    assert nf.value.parameters["liveDeploymentRid"] == missing
    with pytest.raises(model_errors.LiveDeploymentNotFound):
        live.replace(missing, runtime_configuration=_config(), preview=True)

    nowhere = "ri.models.main.model.00000000-0000-4000-8000-000000000000"
    with pytest.raises(model_errors.ModelNotFound) as mnf:
        live.create(deployment_type={**target, "modelRid": nowhere},
                    runtime_configuration=_config(), preview=True)
    assert mnf.value.parameters["modelRid"] == nowhere
    with pytest.raises(model_errors.ModelNotFound):
        live.list(model_rid=nowhere, preview=True)

    with pytest.raises(foundry_sdk.BadRequestError) as preview:
        live.get(missing)
    assert preview.value.name == "ApiFeaturePreviewUsageOnly"

    no_image = _config(environmentVariables={})
    with pytest.raises(foundry_sdk.BadRequestError) as image:
        live.create(deployment_type=target, runtime_configuration=no_image, preview=True)
    assert "BERTH_IMAGE" in str(image.value.parameters)

    with pytest.raises(foundry_sdk.UnauthorizedError):
        _client(server, "wrong").models.LiveDeployment.get(missing, preview=True)


def test_read_only_token_cannot_replace(server: BerthServer) -> None:
    admin = {"Authorization": f"Bearer {server.token}"}
    r = httpx.post(f"{server.url}/v1/tokens", headers=admin,
                   json={"name": "fd-reader", "access": "read"})
    assert r.status_code < 300, r.text
    reader = r.json()["secret"]
    models = _client(server, server.token).models
    model = models.Model.create(name="ro-model", parent_folder_rid=FOLDER)
    created = models.LiveDeployment.create(
        deployment_type={"type": "direct", "modelRid": model.rid, "branch": "master"},
        runtime_configuration=_config(minReplicas=0), preview=True)
    ro = _client(server, reader).models.LiveDeployment
    assert ro.get(created.rid, preview=True).rid == created.rid
    with pytest.raises(model_errors.ReplaceLiveDeploymentPermissionDenied) as denied:
        ro.replace(created.rid, runtime_configuration=_config(), preview=True)
    assert denied.value.parameters["liveDeploymentRid"] == created.rid


SOURCE = "ri.magritte..source.0a1b2c3d-0000-4000-8000-000000000001"
OTHER_SOURCE = "ri.magritte..source.0a1b2c3d-0000-4000-8000-000000000002"


def test_sources_are_kept_and_locked_while_running(server: BerthServer) -> None:
    models = _client(server, server.token).models
    live = models.LiveDeployment
    model = models.Model.create(name="sources-model", parent_folder_rid=FOLDER)
    created = live.create(
        deployment_type={"type": "direct", "modelRid": model.rid, "branch": "master"},
        runtime_configuration=_config(minReplicas=0, sources=[SOURCE]), preview=True)
    assert created.runtime_configuration.sources == [SOURCE]
    assert live.get(created.rid, preview=True).runtime_configuration.sources == [SOURCE]
    with pytest.raises(model_errors.LiveDeploymentSourcesCannotBeUpdatedWhileRunning) as lock:
        live.replace(created.rid, runtime_configuration=_config(sources=[OTHER_SOURCE]),
                     preview=True)
    assert lock.value.parameters["liveDeploymentRid"] == created.rid
    same = live.replace(created.rid, runtime_configuration=_config(maxReplicas=2,
                                                                   sources=[SOURCE]),
                        preview=True)  # other fields may change while running
    assert same.runtime_configuration.max_replicas == 2
    live.disable(created.rid, preview=True)
    wait_for(lambda: live.get(created.rid, preview=True).status.state == "DISABLED", 30,
             what="DISABLED")
    moved = live.replace(created.rid, runtime_configuration=_config(sources=[OTHER_SOURCE]),
                         preview=True)
    assert moved.runtime_configuration.sources == [OTHER_SOURCE]
    # The SDK checks RIDs itself; other clients get Foundry's error.
    bad = httpx.post(f"{server.url}/api/v2/models/liveDeployments?preview=true",
                     headers={"Authorization": f"Bearer {server.token}"},
                     json={"deploymentType": {"type": "direct", "modelRid": model.rid,
                                              "branch": "b2"},
                           "runtimeConfiguration": _config(sources=["not-a-rid"])})
    assert bad.status_code == 400
    assert bad.json()["errorName"] == "InvalidLiveDeploymentConfiguration"
    assert "not-a-rid" in bad.json()["parameters"]["message"]


def test_model_and_version_reads(server: BerthServer) -> None:
    models = _client(server, server.token).models
    model = models.Model.create(name="read-model", parent_folder_rid=FOLDER)
    assert models.Model.get(model.rid).rid == model.rid
    nowhere = "ri.models.main.model.00000000-0000-4000-8000-00000000abcd"
    with pytest.raises(model_errors.ModelNotFound) as missing:
        models.Model.get(nowhere)
    assert missing.value.parameters["modelRid"] == nowhere
    assert list(models.Model.Version.list(model.rid)) == []
    made = [models.LiveDeployment.create(
        deployment_type={"type": "direct", "modelRid": model.rid, "branch": branch},
        runtime_configuration=_config(minReplicas=0), preview=True) for branch in ("a", "b")]
    rids = [m.model_version.model_version_rid for m in made]
    versions = list(models.Model.Version.list(model.rid, page_size=1))  # follows the pages
    assert [v.rid for v in versions] == rids
    assert versions[0].source is not None and versions[0].model_api.inputs == []
    assert [v.rid for v in models.Model.Version.list(model.rid, branch="b")] == rids[1:]
    one = models.Model.Version.get(model.rid, rids[0])
    assert one.rid == rids[0] and one.created_time == versions[0].created_time
    unknown = "ri.models.main.model-version.00000000-0000-4000-8000-000000000000"
    with pytest.raises(model_errors.ModelVersionNotFound):
        models.Model.Version.get(model.rid, unknown)
    with pytest.raises(model_errors.ModelNotFound):
        list(models.Model.Version.list(nowhere))


def test_a_model_branch_has_one_live_deployment(server: BerthServer) -> None:
    models = _client(server, server.token).models
    live = models.LiveDeployment
    model = models.Model.create(name="dup-model", parent_folder_rid=FOLDER)
    target = {"type": "direct", "modelRid": model.rid, "branch": "master"}
    first = live.create(deployment_type=target, runtime_configuration=_config(minReplicas=0),
                        preview=True)
    with pytest.raises(foundry_sdk.ConflictError) as dup:
        live.create(deployment_type=target, runtime_configuration=_config(minReplicas=0),
                    preview=True)
    assert dup.value.name == "LiveDeploymentAlreadyExists"
    assert dup.value.parameters == {"modelRid": model.rid, "branch": "master",
                                    "liveDeploymentRid": first.rid}
    live.disable(first.rid, preview=True)  # a disabled deployment still holds its branch
    with pytest.raises(foundry_sdk.ConflictError):
        live.create(deployment_type=target, runtime_configuration=_config(minReplicas=0),
                    preview=True)
    other = live.create(deployment_type={**target, "branch": "dev"},
                        runtime_configuration=_config(minReplicas=0), preview=True)
    assert [d.rid for d in live.list(model_rid=model.rid, preview=True).data] == [
        first.rid, other.rid]
    # A create that fails validation leaves no claim behind.
    with pytest.raises(model_errors.ThreadCountTooHigh):
        live.create(deployment_type={**target, "branch": "qa"},
                    runtime_configuration=_config(threadCount=100000), preview=True)
    assert live.create(deployment_type={**target, "branch": "qa"},
                       runtime_configuration=_config(minReplicas=0), preview=True).branch == "qa"

    # Concurrent creates for one branch: exactly one wins.
    def create_race() -> int:
        return httpx.post(
            f"{server.url}/api/v2/models/liveDeployments?preview=true",
            headers={"Authorization": f"Bearer {server.token}"}, timeout=30,
            json={"deploymentType": {**target, "branch": "race"},
                  "runtimeConfiguration": _config(minReplicas=0)}).status_code

    with ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(lambda _: create_race(), range(4)))
    assert codes == [200, 409, 409, 409]
