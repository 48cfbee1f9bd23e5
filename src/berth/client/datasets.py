"""`BerthClient`'s datasets: named places async results are written to, and their objects."""

from __future__ import annotations

import builtins
from typing import Any

from berth.api.v1.models import DatasetList, DatasetOut, ObjectList, ObjectOut
from berth.client.base import ClientBase


class DatasetsMixin(ClientBase):
    def create_dataset(self, name: str, url: str | None = None,
                       description: str = "") -> DatasetOut:
        """A dataset under the server's data directory, or at an fsspec `url`
        (`s3://bucket/prefix`, `file:///path`, `memory://...`)."""
        body: dict[str, Any] = {"name": name, "description": description}
        if url is not None:
            body["url"] = url
        return self._call(DatasetOut, "POST", self._in_project("datasets"), body=body)

    def datasets(self) -> builtins.list[DatasetOut]:
        return self._call(DatasetList, "GET", self._in_project("datasets")).items

    def dataset(self, name: str) -> DatasetOut:
        return self._call(DatasetOut, "GET", self._in_project("datasets", name))

    def delete_dataset(self, name: str) -> None:
        """Refused (409) while a deployment sends its async results there."""
        self._send("DELETE", self._in_project("datasets", name))

    def dataset_objects(self, name: str, prefix: str = "",
                        limit: int = 1000) -> builtins.list[ObjectOut]:
        """Objects under `prefix` (a folder such as `echo/`; '' for all), sorted by path."""
        params: dict[str, Any] = {"limit": limit}
        if prefix:
            params["prefix"] = prefix
        path = f"{self._in_project('datasets', name)}/objects"
        return self._call(ObjectList, "GET", path, params=params).items

    def read_object(self, name: str, path: str) -> bytes:
        """One object's bytes (an async result is `{result_path}` of its request)."""
        segments = "/".join(self._quoted(part) for part in path.split("/"))
        return self._send("GET", f"{self._in_project('datasets', name)}/objects/{segments}",
                          headers={"Accept": "*/*"}).content
