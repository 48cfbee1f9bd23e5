"""Dataset rows: named places for async results (the files are behind fsspec)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from berth.store.schema import datasets as t


@dataclass(frozen=True)
class Dataset:
    id: int
    project: str
    name: str
    url: str | None  # an fsspec URL; None: a directory under the data directory
    description: str
    created_at: datetime


def _record(row: Any) -> Dataset:
    return Dataset(id=row.id, project=row.project, name=row.name, url=row.url,
                   description=row.description, created_at=row.created_at)


class DatasetRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, project: str, name: str, url: str | None, description: str,
               created_at: datetime) -> Dataset:
        result = self.conn.execute(t.insert().values(
            project=project, name=name, url=url, description=description,
            created_at=created_at))
        key = result.inserted_primary_key
        assert key is not None
        return Dataset(int(key[0]), project, name, url, description, created_at)

    def get(self, project: str, name: str) -> Dataset | None:
        row = self.conn.execute(select(t).where((t.c.project == project)
                                                & (t.c.name == name))).first()
        return _record(row) if row is not None else None

    def by_id(self, project: str, dataset_id: int) -> Dataset | None:
        row = self.conn.execute(select(t).where((t.c.project == project)
                                                & (t.c.id == dataset_id))).first()
        return _record(row) if row is not None else None

    def of_project(self, project: str) -> list[Dataset]:
        return [_record(r) for r in self.conn.execute(
            select(t).where(t.c.project == project).order_by(t.c.name))]

    def all(self) -> list[Dataset]:
        return [_record(r) for r in self.conn.execute(select(t).order_by(t.c.id))]

    def delete(self, project: str, name: str) -> bool:
        return self.conn.execute(t.delete().where((t.c.project == project)
                                                  & (t.c.name == name))).rowcount > 0
