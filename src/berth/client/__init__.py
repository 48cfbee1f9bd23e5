"""Typed Python client of Berth's native v1 API.

    from berth.client import BerthClient

    with BerthClient("http://127.0.0.1:8000", token="...") as berth:
        accepted = berth.create({"name": "echo-demo", "image": "berth/echo"})
        task = berth.wait_task(accepted.task_id)
"""

from __future__ import annotations

from berth.api.v1.models import (
    Accepted,
    AsyncAccepted,
    AsyncRequestOut,
    AsyncRequestPage,
    AutoscalerMetricOut,
    AutoscalerOut,
    AutoscalerRegionOut,
    DatasetOut,
    DeploymentList,
    DeploymentOut,
    ErrorDetail,
    EventOut,
    FlavorOut,
    LogLineOut,
    ObjectOut,
    RegionOut,
    ReplicaOut,
    TaskOut,
)
from berth.client.client import (
    DEFAULT_PROJECT,
    DEFAULT_URL,
    BerthClient,
    spec_body,
    token_from_data_dir,
)
from berth.client.errors import (
    BerthAPIError,
    BerthClientError,
    BerthConnectionError,
    BerthProtocolError,
    DeploymentFailed,
)
from berth.domain.spec import DeploymentSpec

__all__ = [
    "DEFAULT_PROJECT",
    "DEFAULT_URL",
    "Accepted",
    "AsyncAccepted",
    "AsyncRequestOut",
    "AsyncRequestPage",
    "AutoscalerMetricOut",
    "AutoscalerOut",
    "AutoscalerRegionOut",
    "BerthAPIError",
    "BerthClient",
    "BerthClientError",
    "BerthConnectionError",
    "BerthProtocolError",
    "DatasetOut",
    "DeploymentFailed",
    "DeploymentList",
    "DeploymentOut",
    "DeploymentSpec",
    "ErrorDetail",
    "EventOut",
    "FlavorOut",
    "LogLineOut",
    "ObjectOut",
    "RegionOut",
    "ReplicaOut",
    "TaskOut",
    "spec_body",
    "token_from_data_dir",
]
