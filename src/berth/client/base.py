"""What every part of `BerthClient` shares: the HTTP client, project paths, and one request
in, a model or a client error out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from berth import __version__
from berth.client.errors import BerthConnectionError, BerthProtocolError, error_from_response

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_PROJECT = "default"

M = TypeVar("M", bound=BaseModel)
Since = float | datetime | None


def since_seconds(since: Since) -> float | None:
    return since.timestamp() if isinstance(since, datetime) else since


class ClientBase:
    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        project: str = DEFAULT_PROJECT,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.project = project
        self.timeout = timeout
        headers = {"Accept": "application/json", "User-Agent": f"berth-client/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, project={self.project!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _in_project(self, *parts: str) -> str:
        """`/v1/projects/{project}/part/...`, each part quoted."""
        tail = "/".join(self._quoted(part) for part in parts)
        return f"/v1/projects/{quote(self.project, safe='')}/{tail}"

    @staticmethod
    def _quoted(segment: str) -> str:
        """One path segment, quoted; `.` and `..` too, so no URL parser collapses them."""
        if segment in (".", ".."):
            return segment.replace(".", "%2E")
        return quote(segment, safe="")

    def _call(
        self,
        model: type[M],
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> M:
        response = self._send(
            method, path, params=params, body=body, content=content, headers=headers
        )
        return self._parse(model, method, path, response)

    @staticmethod
    def _parse(model: type[M], method: str, path: str, response: httpx.Response) -> M:
        try:
            return model.model_validate(response.json())
        except ValueError as exc:
            raise BerthProtocolError(
                f"{method} {path}: unexpected {model.__name__} response: {exc}"
            ) from exc

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One request; transport failures and error answers raise client errors."""
        try:
            response = self._http.request(
                method, path, params=params, json=body, content=content, headers=headers
            )
        except httpx.TransportError as exc:
            raise BerthConnectionError(self.url, str(exc) or type(exc).__name__) from exc
        if response.is_error:
            raise error_from_response(response)
        return response
