"""BerthClient.autoscaler over httpx.MockTransport: the path, the parsed view, a 404."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from berth.client import AutoscalerOut, BerthAPIError, BerthClient
from tests.unit.client.test_client import BASE, Server, ok


def autoscaler_json(**region: Any) -> dict[str, Any]:
    """The view of one region: scaled up to 3 on concurrency, a GPU trigger unavailable."""
    return {"regions": [{
        "region": "local", "current": 2, "desired": 3, "min": 1, "max": 4, "panic": True,
        "reasons": ["concurrency 5.0 / target 2.0: wants 3", "panic: 5.0 >= 2 x 2"],
        "metrics": {
            "concurrency": {"value": 5.0, "target": 2.0, "age_seconds": 0.4, "wants": 3,
                            "status": "ok"},
            "gpu_utilization": {"value": None, "target": 80.0, "age_seconds": None,
                                "wants": None, "status": "unavailable: no NVML"},
        },
        "last_scale_at": "2024-05-01T12:00:00Z", "decided_at": "2024-05-01T12:00:05Z",
        **region,
    }]}


def test_autoscaler_gets_the_view_of_each_region(client: BerthClient, server: Server) -> None:
    server.on("GET", f"{BASE}/echo-demo/autoscaler", ok(autoscaler_json()))
    view = client.autoscaler("echo-demo")
    assert isinstance(view, AutoscalerOut)
    assert server.last.method == "GET"
    (region,) = view.regions
    assert (region.region, region.current, region.desired, region.panic) == ("local", 2, 3, True)
    assert region.metrics["concurrency"].wants == 3
    gpu = region.metrics["gpu_utilization"]
    assert gpu.value is None and gpu.status == "unavailable: no NVML"
    assert region.last_scale_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_autoscaler_quotes_the_name_and_raises_on_404(client: BerthClient,
                                                      server: Server) -> None:
    with pytest.raises(BerthAPIError) as err:
        client.autoscaler("a b")
    assert err.value.status == 404
    assert server.last.url.raw_path == f"{BASE}/a%20b/autoscaler".encode()
