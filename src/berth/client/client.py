"""`BerthClient`: a typed, synchronous client of the native v1 API."""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from berth.api.v1.models import (
    Accepted,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    AutoscalerOut,
    DeploymentList,
    DeploymentOut,
    EventList,
    EventOut,
    FlavorList,
    FlavorOut,
    LogLineOut,
    LogList,
    RegionList,
    RegionOut,
    ReplicaList,
    ReplicaOut,
    TaskOut,
)
from berth.client.async_requests import AsyncRequestsMixin
from berth.client.base import DEFAULT_PROJECT, DEFAULT_URL, Since, since_seconds
from berth.client.datasets import DatasetsMixin
from berth.client.errors import (
    BerthAPIError,
    BerthConnectionError,
    BerthProtocolError,
    DeploymentFailed,
    error_from_response,
)
from berth.domain.spec import Container, DeploymentSpec
from berth.domain.status import DeploymentStatus, TaskState

__all__ = ["DEFAULT_PROJECT", "DEFAULT_URL", "BerthClient", "spec_body", "token_from_data_dir"]

TOKEN_FILE = "admin-token"
MERGE_PATCH = "application/merge-patch+json"

SpecLike = DeploymentSpec | Mapping[str, Any]

_SPEC_KEYS = frozenset(DeploymentSpec.model_fields)
_CONTAINER_KEYS = frozenset(Container.model_fields)


def token_from_data_dir(data_dir: Path | str) -> str | None:
    """The admin token `berth serve` wrote into its data directory, if there is one."""
    try:
        token = (Path(data_dir) / TOKEN_FILE).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return token or None


def spec_body(spec: SpecLike) -> dict[str, Any]:
    """The JSON body of a spec. A `DeploymentOut` is cut back to the spec's own fields."""
    if not isinstance(spec, DeploymentSpec):
        return dict(spec)
    data = spec.model_dump(mode="json", by_alias=True)
    body = {key: value for key, value in data.items() if key in _SPEC_KEYS}
    body["containers"] = [
        {key: value for key, value in container.items() if key in _CONTAINER_KEYS}
        for container in data["containers"]
    ]
    return body


def _statuses(status: str | Iterable[str]) -> set[DeploymentStatus]:
    names = [status] if isinstance(status, str) else list(status)
    try:
        return {DeploymentStatus(name.upper()) for name in names}
    except ValueError:
        valid = ", ".join(s.value for s in DeploymentStatus)
        raise ValueError(f"unknown status in {names}; expected one of {valid}") from None


class BerthClient(DatasetsMixin, AsyncRequestsMixin):
    """Client of one Berth server, scoped to one project.

    >>> with BerthClient(token="...") as berth:
    ...     accepted = berth.create({"name": "echo", "image": "berth/echo"})
    ...     berth.wait_task(accepted.task_id)
    """

    # deployments

    def create(self, spec: SpecLike) -> Accepted:
        return self._call(Accepted, "POST", self._deployments(), body=spec_body(spec))

    def list(self, limit: int | None = None, offset: int | None = None) -> DeploymentList:
        params = {k: v for k, v in (("limit", limit), ("offset", offset)) if v is not None}
        return self._call(DeploymentList, "GET", self._deployments(), params=params)

    def get(self, name: str) -> DeploymentOut:
        return self._call(DeploymentOut, "GET", self._deployment(name))

    def replace(self, name: str, spec: SpecLike, if_match: int | None = None) -> Accepted:
        return self._call(
            Accepted, "PUT", self._deployment(name), body=spec_body(spec),
            headers=self._if_match(if_match),
        )

    def patch(self, name: str, patch: Mapping[str, Any], if_match: int | None = None) -> Accepted:
        headers = {"Content-Type": MERGE_PATCH, **self._if_match(if_match)}
        content = json.dumps(dict(patch)).encode()
        return self._call(
            Accepted, "PATCH", self._deployment(name), content=content, headers=headers
        )

    def start(self, name: str) -> Accepted:
        return self._call(Accepted, "POST", f"{self._deployment(name)}/start")

    def stop(self, name: str) -> Accepted:
        return self._call(Accepted, "POST", f"{self._deployment(name)}/stop")

    def restart(self, name: str) -> Accepted:
        return self._call(Accepted, "POST", f"{self._deployment(name)}/restart")

    def restart_replica(self, name: str, replica: str) -> Accepted:
        """Replace one replica: a new one starts, then this one drains."""
        path = f"{self._deployment(name)}/replicas/{quote(replica, safe='')}/restart"
        return self._call(Accepted, "POST", path)

    def delete(self, name: str) -> Accepted:
        return self._call(Accepted, "DELETE", self._deployment(name))

    # observation

    def replicas(self, name: str) -> builtins.list[ReplicaOut]:
        return self._call(ReplicaList, "GET", f"{self._deployment(name)}/replicas").items

    def events(self, name: str, limit: int = 100) -> builtins.list[EventOut]:
        path = f"{self._deployment(name)}/events"
        return self._call(EventList, "GET", path, params={"limit": limit}).items

    def autoscaler(self, name: str) -> AutoscalerOut:
        """The autoscaler's latest decision per region: counts, panic, reasons, metrics."""
        return self._call(AutoscalerOut, "GET", f"{self._deployment(name)}/autoscaler")

    def logs(self, name: str, since: Since = None, limit: int = 1000) -> builtins.list[LogLineOut]:
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["since"] = since_seconds(since)
        return self._call(LogList, "GET", f"{self._deployment(name)}/logs", params=params).items

    def follow_logs(self, name: str, since: Since = None) -> Generator[LogLineOut, None, None]:
        """Stream log lines as they appear; the stream has no read timeout.

        Exhaust or `close()` the generator to close the connection.
        """
        params: dict[str, Any] = {"follow": "true"}
        if since is not None:
            params["since"] = since_seconds(since)
        path = f"{self._deployment(name)}/logs"
        timeout = httpx.Timeout(self.timeout, read=None)
        try:
            with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield self._parse_line(line)
        except httpx.TransportError as exc:
            raise BerthConnectionError(self.url, str(exc) or type(exc).__name__) from exc

    # tasks and waiting

    def task(self, task_id: str) -> TaskOut:
        return self._call(TaskOut, "GET", f"/v1/tasks/{quote(task_id, safe='')}")

    def wait_task(
        self,
        task_id: str,
        timeout: float = 600.0,
        poll: float = 0.25,
        on_progress: Callable[[TaskOut], None] | None = None,
    ) -> TaskOut:
        """Poll a task until it is FINISHED or ERROR (returned, not raised).

        Raises `TimeoutError` when it is still going after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            task = self.task(task_id)
            if on_progress is not None:
                on_progress(task)
            if task.state in TaskState.done():
                return task
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"task {task_id} is still {task.state} after {timeout:g}s")
            time.sleep(min(poll, remaining))

    def wait_status(
        self,
        name: str,
        status: str | Iterable[str],
        timeout: float = 600.0,
        poll: float = 0.5,
        on_progress: Callable[[DeploymentOut], None] | None = None,
        fail_on: Iterable[str] | None = None,
    ) -> DeploymentOut:
        """Poll a deployment until its status is `status` (one name or several).

        Raises `DeploymentFailed` when it enters one of `fail_on` (default ERROR and FAILED,
        less any status waited for) and `TimeoutError` after `timeout` seconds. Waiting for
        DELETED also ends when the deployment is gone (404).
        """
        targets = _statuses(status)
        broken = DeploymentStatus.broken() if fail_on is None else _statuses(fail_on)
        broken = broken - targets
        deadline = time.monotonic() + timeout
        last: DeploymentOut | None = None
        while True:
            try:
                deployment = self.get(name)
            except BerthAPIError as exc:
                gone = exc.status == 404 and DeploymentStatus.DELETED in targets
                if gone and last is not None:
                    return last.model_copy(update={"status": DeploymentStatus.DELETED})
                raise
            last = deployment
            if on_progress is not None:
                on_progress(deployment)
            if deployment.status in targets:
                return deployment
            if deployment.status in broken:
                raise DeploymentFailed(deployment)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"deployment {name} is still {deployment.status} after {timeout:g}s"
                )
            time.sleep(min(poll, remaining))

    # platform

    def flavors(self) -> builtins.list[FlavorOut]:
        return self._call(FlavorList, "GET", "/v1/flavors").items

    def regions(self) -> builtins.list[RegionOut]:
        return self._call(RegionList, "GET", "/v1/regions").items

    # API keys for the project's inference endpoints

    def create_api_key(
        self, name: str, description: str = "", expires_at: datetime | str | None = None
    ) -> ApiKeyCreated:
        """Create a key; the result's `secret` is returned only this once.

        A naive `expires_at` is taken as UTC.
        """
        when = expires_at.isoformat() if isinstance(expires_at, datetime) else expires_at
        body = {"name": name, "description": description, "expires_at": when}
        return self._call(ApiKeyCreated, "POST", self._api_keys(), body=body)

    def api_keys(self) -> builtins.list[ApiKeyOut]:
        return self._call(ApiKeyList, "GET", self._api_keys()).items

    def api_key(self, name: str) -> ApiKeyOut:
        return self._call(ApiKeyOut, "GET", self._api_key(name))

    def delete_api_key(self, name: str) -> None:
        self._send("DELETE", self._api_key(name))

    # plumbing

    def _api_keys(self) -> str:
        return f"/v1/projects/{quote(self.project, safe='')}/api-keys"

    def _api_key(self, name: str) -> str:
        return f"{self._api_keys()}/{quote(name, safe='')}"

    def _deployments(self) -> str:
        return f"/v1/projects/{quote(self.project, safe='')}/deployments"

    def _deployment(self, name: str) -> str:
        return f"{self._deployments()}/{quote(name, safe='')}"

    @staticmethod
    def _if_match(generation: int | None) -> dict[str, str]:
        return {} if generation is None else {"If-Match": str(generation)}

    @staticmethod
    def _parse_line(line: str) -> LogLineOut:
        try:
            return LogLineOut.model_validate_json(line)
        except ValueError as exc:
            raise BerthProtocolError(f"bad log stream line {line[:200]!r}: {exc}") from exc
