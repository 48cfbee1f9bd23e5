"""Dataset use cases: create, list, get, delete, and read the objects (async results)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import fsspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from berth.domain.errors import Conflict, NotFound, SpecInvalid, Violation
from berth.invocations.datasets import DatasetFiles, ObjectInfo, local_root, open_dataset
from berth.invocations.rules import DEFAULT_DATASET
from berth.services.deployments import check_project
from berth.store.datasets import Dataset
from berth.store.engine import Store, Tx

DATASET_NAME = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"


class DatasetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=63, pattern=DATASET_NAME)
    url: str | None = Field(default=None, min_length=1, max_length=2000,
                            description="An fsspec URL (file://, s3://, memory://); "
                                        "default: a directory under the data directory.")
    description: str = Field(default="", max_length=1000)

    @field_validator("url")
    @classmethod
    def _known_protocol(cls, value: str | None) -> str | None:
        if value is None:
            return None
        protocol, sep, rest = value.partition("://")
        if not sep or not rest.strip("/"):
            raise ValueError("must be a URL with a path, e.g. s3://bucket/prefix")
        if protocol not in fsspec.available_protocols():
            raise ValueError(f"unknown protocol {protocol!r}")
        try:
            fsspec.get_filesystem_class(protocol)
        except ImportError as exc:
            raise ValueError(f"protocol {protocol!r} needs a package that is not installed "
                             f"({exc})") from None
        return value


def _invalid(exc: ValidationError) -> SpecInvalid:
    return SpecInvalid([Violation(".".join(str(p) for p in e["loc"]), e["type"], e["msg"])
                        for e in exc.errors()])


class DatasetService:
    def __init__(self, store: Store, data_dir: Path, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.data_dir = data_dir
        self.clock = clock

    def create(self, project: str, data: object) -> Dataset:
        check_project(project)
        try:
            body = DatasetIn.model_validate(data)
        except ValidationError as exc:
            raise _invalid(exc) from None
        with self.store.write(notify=False) as tx:
            if tx.datasets.get(project, body.name) is not None:
                raise Conflict(f"dataset {body.name!r} already exists in project {project!r}",
                               name=body.name)
            return tx.datasets.insert(project, body.name, body.url, body.description,
                                      self.clock())

    def ensure(self, tx: Tx, project: str, name: str) -> Dataset:
        """The dataset `name`; the project's `default` one is made on first use."""
        found = tx.datasets.get(project, name)
        if found is not None:
            return found
        if name != DEFAULT_DATASET:
            raise NotFound(f"dataset {name!r} not found in project {project!r}", name=name)
        return tx.datasets.insert(project, name, None, "async results", self.clock())

    def of_project(self, project: str) -> list[Dataset]:
        check_project(project)
        with self.store.read() as tx:
            return tx.datasets.of_project(project)

    def get(self, project: str, name: str) -> Dataset:
        check_project(project)
        with self.store.read() as tx:
            found = tx.datasets.get(project, name)
        if found is None:
            raise NotFound(f"dataset {name!r} not found in project {project!r}", name=name)
        return found

    def by_id(self, project: str, dataset_id: int) -> Dataset:
        check_project(project)
        found = None
        if 0 < dataset_id < 2**63:  # a row id (a larger one would overflow the database's)
            with self.store.read() as tx:
                found = tx.datasets.by_id(project, dataset_id)
        if found is None:
            raise NotFound(f"dataset {dataset_id} not found in project {project!r}",
                           id=dataset_id)
        return found

    def delete(self, project: str, name: str) -> None:
        """The dataset and, for one under the data directory, its objects. Refused while a
        deployment sends results to it."""
        check_project(project)
        with self.store.write(notify=False) as tx:
            found = tx.datasets.get(project, name)
            if found is None:
                raise NotFound(f"dataset {name!r} not found in project {project!r}", name=name)
            users = [d.name for d in tx.deployments.active() if d.project == project
                     and d.spec.async_.enabled
                     and (d.spec.async_.dataset or DEFAULT_DATASET) == name]
            if users:
                raise Conflict(f"dataset {name!r} receives the async results of "
                               f"{', '.join(sorted(users))}; point them elsewhere first",
                               name=name)
            tx.datasets.delete(project, name)
        if found.url is None:
            shutil.rmtree(local_root(self.data_dir, found), ignore_errors=True)

    def files(self, d: Dataset) -> DatasetFiles:
        return open_dataset(d, self.data_dir)

    def objects(self, project: str, name: str, prefix: str = "", limit: int = 1000
                ) -> list[ObjectInfo]:
        return self.files(self.get(project, name)).list(prefix, limit=limit)

    def read(self, project: str, name: str, path: str) -> bytes:
        data = self.files(self.get(project, name)).read(path)
        if data is None:
            raise NotFound(f"object {path!r} not found in dataset {name!r}", path=path)
        return data
