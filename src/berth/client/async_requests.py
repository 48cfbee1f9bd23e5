"""`BerthClient`'s async requests: submit one to a deployment's gateway address, read one,
page through them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from berth.api.v1.models import AsyncAccepted, AsyncRequestOut, AsyncRequestPage
from berth.client.base import ClientBase, Since, since_seconds
from berth.client.errors import BerthConnectionError, error_from_response

SUBMIT_RETRIES = 8  # answers of 429 (backlog full) waited out before giving up
MAX_RETRY_WAIT = 30.0  # seconds; a longer Retry-After is cut to this
FIRST_RETRY_WAIT = 0.5  # without Retry-After: 0.5 s, 1 s, 2 s, ...

sleep = time.sleep  # tests replace it


def retry_after(response: httpx.Response, attempt: int, now: datetime | None = None) -> float:
    """Seconds to wait after a 429: its Retry-After (seconds or an HTTP date), else an
    exponential back-off; within [0, MAX_RETRY_WAIT]."""
    value = response.headers.get("retry-after", "").strip()
    wait: float | None = None
    if value:
        try:
            wait = float(value)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                wait = None
            else:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                wait = (when - (now or datetime.now(UTC))).total_seconds()
    if wait is None or wait != wait:  # absent, unreadable or NaN
        wait = FIRST_RETRY_WAIT * 2 ** attempt
    return min(MAX_RETRY_WAIT, max(0.0, wait))


def _statuses(status: str | Iterable[str] | None) -> list[str]:
    if status is None:
        return []
    names = [status] if isinstance(status, str) else list(status)
    return [name.upper() for name in names]


class AsyncRequestsMixin(ClientBase):
    def async_get(self, name: str, request_id: str) -> AsyncRequestOut:
        """One request of deployment `name`; `result` holds its result when it is JSON of at
        most 1 MiB (else read `result_path` from `dataset` with `read_object`)."""
        path = self._in_project("deployments", name, "async", request_id)
        return self._call(AsyncRequestOut, "GET", path)

    def async_list(
        self,
        name: str,
        status: str | Iterable[str] | None = None,
        since: Since = None,
        until: Since = None,
        page: int = 1,
        per_page: int = 50,
    ) -> AsyncRequestPage:
        """Newest first; `counts` per status within since/until."""
        params: dict[str, Any] = {"page": page, "per_page": per_page}
        wanted = _statuses(status)
        if wanted:
            params["status"] = wanted
        for key, value in (("since", since_seconds(since)), ("until", since_seconds(until))):
            if value is not None:
                params[key] = value
        path = self._in_project("deployments", name, "async")
        return self._call(AsyncRequestPage, "GET", path, params=params)

    def async_submit(
        self,
        address: str,
        route: str,
        body: Any,
        idempotency_key: str | None = None,
        api_key: str | None = None,
        *,
        retries: int = SUBMIT_RETRIES,
        content_type: str = "application/json",
    ) -> AsyncAccepted:
        """Queue one request at a deployment's gateway `address` (its `address` field):
        `POST {address}/async/{route}`, answered 202 once it is stored. `body` is sent as it
        is when it is bytes or text, else as JSON. A full backlog (429) is waited out, as its
        Retry-After says, up to `retries` times. The gateway takes the deployment's API key
        (`api_key`), never the control token."""
        if isinstance(body, bytes):
            content = body
        elif isinstance(body, str):
            content = body.encode()
        else:
            content = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        url = f"{address.rstrip('/')}/async/{route.lstrip('/')}"
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        attempt = 0
        while True:
            request = self._http.build_request("POST", url, content=content, headers=headers)
            request.headers.pop("Authorization", None)  # the control token stays with the API
            if api_key:
                request.headers["Authorization"] = f"Bearer {api_key}"
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                raise BerthConnectionError(address, str(exc) or type(exc).__name__) from exc
            if response.status_code == 429 and attempt < retries:
                sleep(retry_after(response, attempt))
                attempt += 1
                continue
            if response.is_error:
                raise error_from_response(response)
            return self._parse(AsyncAccepted, "POST", url, response)
