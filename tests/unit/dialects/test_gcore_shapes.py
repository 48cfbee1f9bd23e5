"""Gcore <-> Berth translation, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from berth.api.dialects.gcore import keys, models, shapes
from berth.controller.placement import GpuRequest, place
from berth.domain.errors import SpecInvalid, Violation
from berth.domain.platform import Flavor, Gpu
from tests.fakes.builders import deployment, facts

GPUS = (Gpu(0, "NVIDIA H100 80GB HBM3", 81559, "9.0"), Gpu(1, "NVIDIA H100 80GB HBM3", 81559,
                                                            "9.0"),
        Gpu(2, "NVIDIA L4", 23034, "8.9"))


def native(body: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    model = models.DeploymentUpdate if partial else models.DeploymentCreate
    return shapes.to_native(models.parse(model, body), facts(), partial=partial)


def test_a_probe_giving_all_three_actions_keeps_http_get_then_tcp_then_exec() -> None:
    every = {"exec": {"command": ["ls"]}, "http_get": {"path": "/h", "port": 80},
             "tcp_socket": {"port": 81}, "period_seconds": 5}
    base = {"name": "abcd", "image": "catalog/echo", "listening_port": 8080,
            "flavor_name": "x", "containers": []}
    out = native(base | {"probes": {"readiness_probe": {"enabled": True, "probe": every}}})
    assert out["probes"] == {"readiness": {"http_get": {"path": "/h", "port": 80},
                                           "period_seconds": 5}}
    del every["http_get"]
    out = native(base | {"probes": {"startup_probe": {"enabled": True, "probe": every}}})
    assert out["probes"] == {"startup": {"tcp_socket": {"port": 81}, "period_seconds": 5}}


def test_patch_nulls_remove_and_absent_fields_stay() -> None:
    assert native({"command": None, "envs": {"A": "1"}}, partial=True) == {
        "command": None, "envs": {"A": "1"}}
    assert native({}, partial=True) == {}


def test_native_fields_are_renamed_back() -> None:
    renamed = shapes.gcore_fields(SpecInvalid([
        Violation("probes.liveness.exec.command", "r", "m"), Violation("flavor", "r", "m"),
        Violation("containers[2].region", "r", "m"), Violation("ingress.x", "r", "m"),
        Violation("logging.retention_period", "r", "m"), Violation("name", "r", "m")]))
    assert [v.field for v in renamed.violations] == [
        "probes.liveness_probe.probe.exec.command", "flavor_name", "containers[2].region_id",
        "ingress_opts.x", "logging.retention_policy.period", "name"]


def test_capacity_uses_the_controllers_placement_rule() -> None:
    platform = facts(GPUS)
    h100 = Flavor("h100x1", 8, 2**30, gpus=1, gpu_model="H100")  # a loose name, as placement
    assert place(GpuRequest(1, "H100"), GPUS, set()) == [0]  # ...which the controller places
    assert keys.capacity_of(h100, platform, set()) == 2
    assert keys.capacity_of(h100, platform, {0}) == 1
    pair = Flavor("h100x2", 8, 2**30, gpus=2, gpu_model="NVIDIA H100 80GB HBM3")
    assert keys.capacity_of(pair, platform, set()) == 1
    assert keys.capacity_of(pair, platform, {1}) == 0
    assert keys.capacity_of(Flavor("cpu", 2, 2**30), platform, set()) == 4


@pytest.mark.parametrize("period, days", [(86400, 1), (90000, 2), (None, None)])
def test_retention_is_shown_in_whole_days(period: int | None, days: int | None) -> None:
    d = deployment(logging={"retention_period": period} if period else {})
    shown = shapes.to_gcore(d, facts(), None)["logging"]["retention_policy"]
    assert shown == ({"period": days} if days else None)
