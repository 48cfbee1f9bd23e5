"""Async calls at the gateway: `POST {address}/async/{route}` is gathered, stored durably, and
answered 202 {request_id, status_url}; `GET {address}/async/{request_id}` answers the request's
status (with the result inline when it is small JSON). Same authentication as sync calls.

Only the `/async/` prefix of a deployment's address is the gateway's: everything else goes to
the replicas.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Final

from berth.domain.invocations import InvocationStatus
from berth.domain.spec import AsyncConfig
from berth.gateway.http import plain_response
from berth.invocations import rules
from berth.invocations.intake import Submission
from berth.store.invocations import Accepted, Invocation, NewInvocation

if TYPE_CHECKING:
    from berth.gateway.exchange import Exchange
    from berth.gateway.table import Route

PREFIX: Final = b"/async/"
IDEMPOTENCY_HEADER: Final = b"idempotency-key"
MAX_KEY: Final = 200
INLINE_RESULT: Final = 1024 * 1024  # a JSON result up to this size is answered inline


def is_async(rest: bytes) -> bool:
    return rest.startswith(PREFIX) or rest == b"/async"


def _header(ex: Exchange, name: bytes) -> bytes:
    for n, v in ex.headers:
        if n == name:
            return v
    return b""


def _json(ex: Exchange, status: int, body: object, extra: dict[str, str] | None = None
          ) -> None:
    data = json.dumps(body).encode()
    response = plain_response(status, b"application/json", data, keep_alive=ex.keep_alive)
    if extra:
        head, sep, rest = response.partition(b"\r\n")
        lines = b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in extra.items())
        response = head + sep + lines + rest
    ex.reply_local(response, status)


class AsyncCall:
    """One `POST …/async/{route}`: its body as it comes, then one submission."""

    def __init__(self, ex: Exchange, route: Route, cfg: AsyncConfig, target: rules.Target,
                 base: str) -> None:
        self.ex, self.route, self.cfg, self.target, self.base = ex, route, cfg, target, base
        self.chunks: list[bytes] = []
        self.size = 0
        self.refused = False

    def add(self, chunk: bytes) -> None:
        if self.refused:
            return
        self.size += len(chunk)
        too_large = rules.too_large(self.cfg, self.size)
        if too_large is not None:
            self.refused = True
            self.ex.reply_error(too_large.status, too_large.code, too_large.message)
            return
        self.chunks.append(chunk)

    def done(self) -> None:
        if self.refused or self.ex.done:
            return
        ex = self.ex
        key = _header(ex, IDEMPOTENCY_HEADER).decode("latin-1").strip()
        if len(key) > MAX_KEY:
            ex.reply_error(400, "bad_request", f"Idempotency-Key: at most {MAX_KEY} characters")
            return
        item = NewInvocation(
            id=str(uuid.uuid4()), deployment_id=self.route.deployment_id,
            project=self.route.project, route=self.target.route, path=self.target.path,
            content_type=_header(ex, b"content-type").decode("latin-1")[:200],
            body=b"".join(self.chunks), max_attempts=self.cfg.max_attempts,
            attempt_timeout=self.cfg.attempt_timeout, result_ttl=float(self.cfg.result_ttl),
            created_at=time.time(), idempotency_key=key or None)
        self.chunks = []
        ex.gw.intake.submit(Submission(item, self.cfg, self._answer))

    def _answer(self, result: Accepted | rules.Refusal) -> None:
        ex = self.ex
        if ex.done:
            return  # the client left; the request is stored all the same
        if isinstance(result, rules.Refusal):
            extra = {"retry-after": "1"} if result.status in (429, 503) else None
            ex.reply_error(result.status, result.code, result.message, extra)
            return
        _json(ex, 202, {"request_id": result.id, "status": "QUEUED" if result.created else
                        "ACCEPTED_EARLIER", "status_url": f"{self.base}/async/{result.id}"},
              {"location": f"{self.base}/async/{result.id}"})


def begin(ex: Exchange, route: Route, rest: bytes, query: bytes, base: str) -> None:
    """An `/async` request, routed and authorized: start gathering it, or answer it."""
    cfg = route.invocations or AsyncConfig()
    name = rest[len(PREFIX):].decode("utf-8", errors="replace") if rest != b"/async" else ""
    if ex.method == "GET":
        if not name or "/" in name:
            ex.reply_error(404, "not_found", "GET {address}/async/{request_id}")
            return
        ex.gw.loop.create_task(_status(ex, route, name, base))
        return
    if ex.method != "POST":
        ex.reply_error(405, "method_not_allowed", "async calls are POST {address}/async/"
                       "{route}; their status is GET {address}/async/{request_id}",
                       {"allow": "GET, POST"})
        return
    found = rules.target(cfg, name, query.decode("latin-1"))
    if isinstance(found, rules.Refusal):
        ex.reply_error(found.status, found.code, found.message)
        return
    call = AsyncCall(ex, route, cfg, found, base)
    ex.async_call = call
    if ex.body:  # arrived with the head (raw: `Exchange.raw_body` when chunked)
        for chunk in ((ex.raw_body or []) if ex.chunked_request else ex.body):
            call.add(chunk)
        ex.body = []
    if ex.body_done:
        call.done()


def view(inv: Invocation, result: object | None, base: str) -> dict[str, object]:
    return {"request_id": inv.id, "status": inv.status.value, "reason": inv.reason,
            "attempts": inv.attempts, "max_attempts": inv.max_attempts,
            "created_at": inv.created_at, "started_at": inv.started_at,
            "finished_at": inv.finished_at, "status_code": inv.status_code, "error": inv.error,
            "dataset": inv.dataset, "result_path": inv.result_path,
            "expires_at": inv.expires_at, "result": result,
            "status_url": f"{base}/async/{inv.id}"}


async def _status(ex: Exchange, route: Route, request_id: str, base: str) -> None:
    loop = ex.gw.loop
    try:
        inv, result = await loop.run_in_executor(None, ex.gw.dispatcher.read_status,
                                                 route.deployment_id, request_id)
    except Exception as exc:
        ex.reply_error(503, "store_unavailable", f"the status could not be read: {exc}")
        return
    if ex.done:
        return
    if inv is None:
        ex.reply_error(404, "not_found", f"no async request {request_id!r} in "
                       f"{route.project}/{route.name}")
        return
    parsed: object | None = None
    if result is not None and inv.status in InvocationStatus.finished() \
            and len(result) <= INLINE_RESULT:
        try:
            parsed = json.loads(result)
        except ValueError:
            parsed = None
    _json(ex, 200, view(inv, parsed, base))
