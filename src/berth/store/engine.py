"""The Store: engine, migrations, and transactions that hand out repositories."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine

from berth.store.api_keys import ApiKeyRepo
from berth.store.autoscaler import AutoscalerRepo
from berth.store.credentials import RegistryCredentialRepo, SecretRepo
from berth.store.datasets import DatasetRepo
from berth.store.deployments import DeploymentRepo, SpecCache
from berth.store.dialect_records import DialectRecordRepo
from berth.store.invocations import InvocationRepo
from berth.store.replicas import ReplicaRepo
from berth.store.routing import RoutingRepo
from berth.store.tasks import EventRepo, TaskRepo
from berth.store.tokens import LeaseRepo, TokenRepo

MIGRATIONS = Path(__file__).parent / "migrations"


class Tx:
    """Repositories bound to one connection (one transaction)."""

    def __init__(self, conn: Connection, specs: SpecCache) -> None:
        self.conn = conn
        self.deployments = DeploymentRepo(conn, specs)
        self.replicas = ReplicaRepo(conn)
        self.tasks = TaskRepo(conn)
        self.events = EventRepo(conn)
        self.tokens = TokenRepo(conn)
        self.leases = LeaseRepo(conn)
        self.routing = RoutingRepo(conn)
        self.api_keys = ApiKeyRepo(conn)
        self.dialect_records = DialectRecordRepo(conn)
        self.registry_credentials = RegistryCredentialRepo(conn)
        self.secrets = SecretRepo(conn)
        self.autoscaler = AutoscalerRepo(conn)
        self.invocations = InvocationRepo(conn)
        self.datasets = DatasetRepo(conn)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front, so two writers queue on busy_timeout
        # instead of failing when a read snapshot would need upgrading.
        immediate = conn.get_execution_options().get("berth_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _private_database(path: Path) -> None:
    """The database file made 0600 before SQLite opens it (it would create it 0644, less the
    umask); SQLite gives its -wal and -shm files the database file's mode. Files left by an
    earlier version are made 0600 as well."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(file, 0o600)


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                if url.startswith("sqlite:///") and "?" not in path:
                    _private_database(Path(path))
            self.engine = _sqlite_engine(url)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self._listeners: list[Callable[[], None]] = []
        self._specs = SpecCache()
        self._lock = threading.Lock()
        self._writing: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self.is_sqlite else contextlib.nullcontext())

    def migrate(self) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self.engine.connect() as conn:
            yield Tx(conn, self._specs)
            conn.rollback()

    @contextmanager
    def write(self, notify: bool = True) -> Iterator[Tx]:
        """One write transaction; listeners hear of it after commit.

        On SQLite the writers of this process queue on a lock before BEGIN IMMEDIATE: a
        writer that finds the database locked sleeps in SQLite's busy handler (1, 2, 5, 10…
        ms), which under steady writes from several threads (intake, dispatcher, controller)
        costs more than the writes themselves. Other processes still queue on busy_timeout.
        """
        with self._writing, self.engine.connect().execution_options(berth_write=True) as conn, \
                conn.begin():
            yield Tx(conn, self._specs)
        if notify:
            for listener in list(self._listeners):
                listener()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Called after each committed write (in the writer's thread)."""
        with self._lock:
            self._listeners.append(listener)

    def close(self) -> None:
        self.engine.dispose()
