"""Official SDKs driven against the in-process app (a Starlette TestClient): a `requests`
adapter (the e2enetworks SDK) and an httpx transport (the scale-gp-beta SDK) that hand each
request to the TestClient and its answer back."""

from __future__ import annotations

from typing import Any

import httpx
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict


class RequestsViaTestClient(BaseAdapter):
    def __init__(self, http: Any) -> None:
        super().__init__()
        self.http = http

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Any = None) -> requests.Response:
        body = request.body.encode() if isinstance(request.body, str) else request.body
        r = self.http.request(request.method or "GET", request.url or "", content=body,
                              headers=dict(request.headers))
        out = requests.Response()
        out.status_code, out._content = r.status_code, r.content
        out.headers = CaseInsensitiveDict(dict(r.headers))
        out.url, out.request, out.reason = request.url or "", request, r.reason_phrase
        return out

    def close(self) -> None:
        pass


class HttpxViaTestClient(httpx.BaseTransport):
    def __init__(self, http: Any) -> None:
        self.http = http

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        r = self.http.request(request.method, str(request.url), content=request.read(),
                              headers=list(request.headers.items()))
        return httpx.Response(r.status_code, headers=list(r.headers.items()), content=r.content)
