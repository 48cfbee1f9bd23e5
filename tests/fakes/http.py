"""A fake HTTP server for httpx.MockTransport: queued answers per method and path."""

from __future__ import annotations

from collections.abc import Callable

import httpx

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


class FakeServer:
    """Answers each request with the next answer queued for its method and path (the last
    one repeats); unknown routes get a native 404."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], list[Answer]] = {}

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.routes.setdefault((method, path), []).extend(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "nope"}})
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return answer(request) if callable(answer) else answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def sent(self, method: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method]
