"""Replica facts in the store: the typed columns round-trip, and migration 0007 translates
rows written before it (when the facts lived only in message text)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from berth.domain.status import FailureKind, ReplicaState
from berth.store.engine import MIGRATIONS, Store
from tests.fakes.builders import deployment, replica

NAIVE = datetime(2026, 1, 1)


def _store(tmp: Path) -> Store:
    return Store(f"sqlite:///{tmp / 'b.db'}")


def test_typed_facts_round_trip(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.migrate()
    d = deployment(1)
    rows = [replica(d, "a", ReplicaState.BACKOFF, ready=False, failure=FailureKind.UNHEALTHY),
            replica(d, "b", ReplicaState.STOPPING, ready=False, kill_sent=True),
            replica(d, "c", ReplicaState.PENDING, ready=False, unschedulable="no GPU")]
    with store.write() as tx:
        for r in rows:
            tx.replicas.insert(r)
    with store.write() as tx:
        tx.replicas.save(replace(rows[0], failure=FailureKind.START_FAILED))
    with store.read() as tx:
        got = {r.id: r for r in tx.replicas.all()}
    assert got["a"].failure == FailureKind.START_FAILED
    assert got["b"].kill_sent and got["b"].failure is None
    assert got["c"].unschedulable == "no GPU" and not got["c"].kill_sent
    store.close()


OLD_ROWS = [  # id, state, reason, exit_code, last_error -> what 0007 must read from them
    ("ex", "BACKOFF", "exited with code 3; restarting in 1s", 3, "exited with code 3"),
    ("ne", "BACKOFF", "x", 127, "command not found: 'vllm'"),
    ("pd", "BACKOFF", "x", 126, "permission denied: './serve'"),
    ("lo", "BACKOFF", "x", None, "process lost"),
    ("sf", "BACKOFF", "x", None, "could not start: no free port"),
    ("un", "BACKOFF", "x", None, "liveness probe failed: 503"),
    ("ok", "RUNNING", "ready", None, ""),
    ("kl", "STOPPING", "grace period over; SIGKILL sent", None, ""),
    ("st", "STOPPING", "drained; SIGTERM sent", None, ""),
    ("gp", "PENDING", "Unschedulable: needs 1 GPU; 0 of 1 free", None, ""),
]
EXPECTED = {
    "ex": (FailureKind.EXITED, False, ""), "ne": (FailureKind.NOT_EXECUTABLE, False, ""),
    "pd": (FailureKind.NOT_EXECUTABLE, False, ""), "lo": (FailureKind.LOST, False, ""),
    "sf": (FailureKind.START_FAILED, False, ""), "un": (FailureKind.UNHEALTHY, False, ""),
    "ok": (None, False, ""), "kl": (None, True, ""), "st": (None, False, ""),
    "gp": (None, False, "needs 1 GPU; 0 of 1 free"),
}


def test_migration_0007_reads_the_old_text_once(tmp_path: Path) -> None:
    store = _store(tmp_path)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
        conn.commit()
    with store.engine.connect() as conn:
        for rid, state, reason, code, error in OLD_ROWS:
            conn.execute(text(
                "INSERT INTO replicas (id, deployment_id, region, template, generation, state,"
                " reason, since, created_at, ready, gpus, restarts, failures, exit_code,"
                " last_error) VALUES (:id, 'd1', 'local', 't', 1, :state, :reason, :at, :at,"
                " 0, '[]', 0, 1, :code, :error)"),
                {"id": rid, "state": state, "reason": reason, "at": NAIVE, "code": code,
                 "error": error})
        conn.commit()
    store.migrate()  # 0006 -> head
    with store.read() as tx:
        rows = tx.replicas.all()
    assert {r.id: (r.failure, r.kill_sent, r.unschedulable) for r in rows} == EXPECTED
    assert all(r.since == NAIVE.replace(tzinfo=UTC) for r in rows)
    store.close()
