"""The async queue: one row per accepted request, leased by dispatchers.

Every change is one statement guarded by what it expects (status, lease token), so two
dispatchers never both finish a request, and a try that outlived its lease changes nothing.
On PostgreSQL a lease takes its rows with `FOR UPDATE SKIP LOCKED`; on SQLite the write
transaction (BEGIN IMMEDIATE) already serializes leases.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select

from berth.domain.invocations import InvocationStatus
from berth.store.schema import invocations as t

_Q, _R = InvocationStatus.QUEUED.value, InvocationStatus.RUNNING.value
_PENDING = [_Q, _R]
_FINISHED = [s.value for s in InvocationStatus.finished()]


@dataclass(frozen=True)
class NewInvocation:
    id: str
    deployment_id: str
    project: str
    route: str
    path: str
    content_type: str
    body: bytes
    max_attempts: int
    attempt_timeout: float
    result_ttl: float
    created_at: float
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Invocation:
    id: str
    deployment_id: str
    project: str
    idempotency_key: str | None
    route: str
    path: str
    content_type: str
    body_size: int
    status: InvocationStatus
    reason: str
    attempts: int
    max_attempts: int
    attempt_timeout: float
    result_ttl: float
    created_at: float
    started_at: float | None
    finished_at: float | None
    next_at: float
    lease_until: float | None
    leased_by: str | None
    lease_token: int
    status_code: int | None
    error: str | None
    dataset: str | None
    result_path: str | None
    result_size: int | None
    expires_at: float | None


@dataclass(frozen=True)
class Leased:
    """A request a dispatcher holds: what it needs to send it, and its fencing token."""

    id: str
    deployment_id: str
    project: str
    route: str
    path: str
    content_type: str
    body: bytes
    attempt: int
    max_attempts: int
    attempt_timeout: float
    result_ttl: float
    token: int


@dataclass(frozen=True)
class Backlog:
    queued: int = 0
    running: int = 0
    oldest_at: float | None = None  # created_at of the oldest pending request

    @property
    def pending(self) -> int:
        return self.queued + self.running


@dataclass(frozen=True)
class Accepted:
    id: str
    created: bool  # False: an earlier request with the same idempotency key


@dataclass(frozen=True)
class Ending:
    """A try's end, as the dispatcher records it."""

    id: str
    token: int
    status: InvocationStatus  # QUEUED (retry), SUCCEEDED or FAILED
    at: float
    reason: str = ""
    status_code: int | None = None
    error: str | None = None
    next_at: float = 0.0  # QUEUED
    dataset: str | None = None
    result_path: str | None = None
    result_size: int | None = None
    expires_at: float | None = None


_COLUMNS = [f.name for f in fields(Invocation)]
_LISTED = [t.c[name] for name in _COLUMNS]
_FINISH = t.update().where(
    (t.c.id == bindparam("key_id")) & (t.c.lease_token == bindparam("key_token"))
    & (t.c.status == _R))


def _record(row: Any) -> Invocation:
    values = {name: getattr(row, name) for name in _COLUMNS}
    values["status"] = InvocationStatus(values["status"])
    return Invocation(**values)


class InvocationRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- intake -----------------------------------------------------------------------------

    def held_keys(self, items: Sequence[NewInvocation]) -> dict[tuple[str, str], str]:
        """(deployment id, idempotency key) -> the id of the stored request holding it, for
        the keys of `items`."""
        keyed = {(i.deployment_id, i.idempotency_key) for i in items if i.idempotency_key}
        held: dict[tuple[str, str], str] = {}
        for d_id in {d for d, _ in keyed}:
            keys = [k for d, k in keyed if d == d_id]
            for start in range(0, len(keys), 500):
                rows = self.conn.execute(
                    select(t.c.id, t.c.idempotency_key)
                    .where((t.c.deployment_id == d_id)
                           & t.c.idempotency_key.in_(keys[start:start + 500])))
                held.update({(d_id, r.idempotency_key): r.id for r in rows})
        return held

    def enqueue(self, items: Sequence[NewInvocation]) -> list[Accepted]:
        """Insert `items` (one statement); an item whose idempotency key is already held by a
        request of its deployment (or by an earlier item) is answered with that one's id."""
        held = self.held_keys(items)
        out: list[Accepted] = []
        rows_in: list[dict[str, Any]] = []
        for i in items:
            key = (i.deployment_id, i.idempotency_key) if i.idempotency_key else None
            if key is not None and key in held:
                out.append(Accepted(held[key], created=False))
                continue
            if key is not None:
                held[key] = i.id
            out.append(Accepted(i.id, created=True))
            rows_in.append({
                "id": i.id, "deployment_id": i.deployment_id, "project": i.project,
                "idempotency_key": i.idempotency_key, "route": i.route, "path": i.path,
                "content_type": i.content_type, "body": i.body, "body_size": len(i.body),
                "status": _Q, "reason": "accepted", "attempts": 0,
                "max_attempts": i.max_attempts, "attempt_timeout": i.attempt_timeout,
                "result_ttl": i.result_ttl, "created_at": i.created_at, "next_at": i.created_at,
                "lease_token": 0})
        if rows_in:
            self.conn.execute(t.insert(), rows_in)
        return out

    def backlog(self, deployment_ids: Iterable[str] | None = None) -> dict[str, Backlog]:
        """Pending requests per deployment (those with none are left out)."""
        query = (select(t.c.deployment_id, t.c.status, func.count(), func.min(t.c.created_at))
                 .where(t.c.status.in_(_PENDING)).group_by(t.c.deployment_id, t.c.status))
        if deployment_ids is not None:
            query = query.where(t.c.deployment_id.in_(list(deployment_ids)))
        counts: dict[str, dict[str, tuple[int, float]]] = {}
        for d_id, status, n, oldest in self.conn.execute(query):
            counts.setdefault(d_id, {})[status] = (int(n), float(oldest))
        out: dict[str, Backlog] = {}
        for d_id, by in counts.items():
            q, r = by.get(_Q, (0, 0.0)), by.get(_R, (0, 0.0))
            oldest = min(at for n, at in (q, r) if n)
            out[d_id] = Backlog(queued=q[0], running=r[0], oldest_at=oldest)
        return out

    # -- dispatch -----------------------------------------------------------------------------

    def lease(self, deployment_id: str, limit: int, now: float, holder: str,
              visibility: float) -> list[Leased]:
        """Up to `limit` requests due (QUEUED and past `next_at`, or RUNNING with a lapsed
        lease), oldest first, leased to `holder` until `now + visibility`; a lease never takes
        the deployment past `limit` requests held."""
        held = self.conn.execute(
            select(func.count()).select_from(t)
            .where((t.c.deployment_id == deployment_id) & (t.c.status == _R)
                   & (t.c.lease_until >= now))).scalar_one()
        room = limit - int(held)
        if room <= 0:
            return []
        due = or_(and_(t.c.status == _Q, t.c.next_at <= now),
                  and_(t.c.status == _R, t.c.lease_until < now))
        query = (select(t.c.id, t.c.deployment_id, t.c.project, t.c.route, t.c.path,
                        t.c.content_type, t.c.body, t.c.attempts, t.c.max_attempts,
                        t.c.attempt_timeout, t.c.result_ttl, t.c.lease_token, t.c.started_at)
                 .where((t.c.deployment_id == deployment_id) & due)
                 .order_by(t.c.created_at).limit(room))
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = list(self.conn.execute(query))
        if not rows:
            return []
        self.conn.execute(
            t.update().where(t.c.id == bindparam("key_id")),
            [{"key_id": r.id, "status": _R, "reason": f"try {r.attempts + 1} running",
              "attempts": r.attempts + 1, "lease_until": now + visibility, "leased_by": holder,
              "lease_token": r.lease_token + 1,
              "started_at": r.started_at if r.started_at is not None else now}
             for r in rows])
        return [Leased(id=r.id, deployment_id=r.deployment_id, project=r.project,
                       route=r.route, path=r.path, content_type=r.content_type,
                       body=r.body or b"", attempt=r.attempts + 1, max_attempts=r.max_attempts,
                       attempt_timeout=r.attempt_timeout, result_ttl=r.result_ttl,
                       token=r.lease_token + 1) for r in rows]

    def renew(self, held: Iterable[tuple[str, int]], until: float) -> None:
        """Extend the leases a dispatcher still holds (id, token)."""
        params = [{"key_id": i, "key_token": tok, "lease_until": until} for i, tok in held]
        if params:
            self.conn.execute(_FINISH, params)

    def end(self, endings: Sequence[Ending]) -> set[str]:
        """Record tries' ends; those whose lease is no longer theirs change nothing. Returns
        the ids recorded."""
        done: set[str] = set()
        for e in endings:  # each guarded by its token: a rowcount per row
            values: dict[str, Any] = {
                "status": e.status.value, "reason": e.reason, "status_code": e.status_code,
                "error": e.error, "lease_until": None, "leased_by": None}
            if e.status is InvocationStatus.QUEUED:
                values["next_at"] = e.next_at
            else:
                values.update(finished_at=e.at, dataset=e.dataset, result_path=e.result_path,
                              result_size=e.result_size, expires_at=e.expires_at, body=None)
            result = self.conn.execute(
                t.update().where((t.c.id == e.id) & (t.c.lease_token == e.token)
                                 & (t.c.status == _R)).values(**values))
            if result.rowcount:
                done.add(e.id)
        return done

    def fail_pending(self, deployment_id: str, now: float, reason: str) -> int:
        """The deployment is gone: its queued requests (and running ones whose lease has
        lapsed) end FAILED, with no result."""
        waiting = or_(t.c.status == _Q, and_(t.c.status == _R, t.c.lease_until < now))
        return int(self.conn.execute(
            t.update().where((t.c.deployment_id == deployment_id) & waiting)
            .values(status=InvocationStatus.FAILED.value, reason=reason, error=reason,
                    finished_at=now, expires_at=now + t.c.result_ttl, body=None,
                    lease_until=None, leased_by=None)).rowcount)

    def expire(self, now: float, limit: int = 1000) -> list[Invocation]:
        """Finished requests past `expires_at` become EXPIRED (their key freed); returns them
        as they were, for their results to be removed."""
        rows = list(self.conn.execute(
            select(*_LISTED).where(t.c.status.in_(_FINISHED) & (t.c.expires_at < now))
            .order_by(t.c.expires_at).limit(limit)))
        if rows:
            self.conn.execute(
                t.update().where(t.c.id.in_([r.id for r in rows])
                                 & t.c.status.in_(_FINISHED))
                .values(status=InvocationStatus.EXPIRED.value, idempotency_key=None,
                        reason="the result outlived result_ttl", body=None))
        return [_record(r) for r in rows]

    # -- reading ------------------------------------------------------------------------------

    def get(self, deployment_id: str, invocation_id: str) -> Invocation | None:
        row = self.conn.execute(select(*_LISTED).where(
            (t.c.id == invocation_id) & (t.c.deployment_id == deployment_id))).first()
        return _record(row) if row is not None else None

    def body(self, invocation_id: str) -> bytes | None:
        return self.conn.execute(select(t.c.body).where(t.c.id == invocation_id)).scalar()

    def page(self, deployment_id: str, *, statuses: Iterable[InvocationStatus] = (),
             since: float | None = None, until: float | None = None, offset: int = 0,
             limit: int = 100, route: str | None = None) -> tuple[int, list[Invocation]]:
        """Newest first; the total matching, and one page."""
        where = t.c.deployment_id == deployment_id
        wanted = [s.value for s in statuses]
        if wanted:
            where = where & t.c.status.in_(wanted)
        if route is not None:
            where = where & (t.c.route == route)
        if since is not None:
            where = where & (t.c.created_at >= since)
        if until is not None:
            where = where & (t.c.created_at < until)
        total = self.conn.execute(select(func.count()).select_from(t).where(where)).scalar_one()
        rows = self.conn.execute(select(*_LISTED).where(where)
                                 .order_by(t.c.created_at.desc(), t.c.id)
                                 .offset(offset).limit(limit))
        return int(total), [_record(r) for r in rows]

    def counts(self, deployment_id: str) -> dict[InvocationStatus, int]:
        rows = self.conn.execute(select(t.c.status, func.count()).where(
            t.c.deployment_id == deployment_id).group_by(t.c.status))
        return {InvocationStatus(s): int(n) for s, n in rows}
