"""A dataset's objects, through fsspec: a directory under the data directory by default, any
fsspec URL when the dataset names one (`file://`, `s3://` with s3fs installed, `memory://`).

Objects are written whole or not at all: on a local disk to a temporary file in the root's
`.partial/` folder, fsynced and renamed over the final name (one object per name, whatever
was there); object stores put atomically. A write cut short (a crash) leaves only a file in
`.partial/`, which listings skip and `sweep_partial` removes.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from berth.domain.errors import BerthError
from berth.store.datasets import Dataset

PARTIAL = ".partial"


class BadObjectPath(BerthError):
    code = "invalid_path"
    status = 400


@dataclass(frozen=True)
class ObjectInfo:
    path: str  # relative to the dataset's root
    size: int
    modified_at: float | None


def object_path(path: str) -> str:
    """`path` checked as a relative object name: no empty, `.` or `..` segment."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) \
            or parts[0] == PARTIAL:
        raise BadObjectPath("path: must be a relative name of non-empty segments, without "
                            f"'.' or '..', not under {PARTIAL}/", path=path)
    return path


def local_root(data_dir: Path, d: Dataset) -> Path:
    return data_dir / "datasets" / d.project / d.name


class DatasetFiles:
    """One dataset's filesystem and root."""

    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.local = isinstance(fs, LocalFileSystem)

    def _full(self, path: str) -> str:
        return f"{self.root}/{object_path(path)}"

    def write(self, path: str, data: bytes) -> None:
        full = self._full(path)
        parent = posixpath.dirname(full)
        if self.local:
            os.makedirs(parent, mode=0o700, exist_ok=True)
            os.makedirs(f"{self.root}/{PARTIAL}", mode=0o700, exist_ok=True)
            temp = f"{self.root}/{PARTIAL}/{uuid.uuid4().hex}.tmp"
            with open(temp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, full)
            return
        self.fs.pipe_file(full, data)

    def read(self, path: str) -> bytes | None:
        full = self._full(path)
        try:
            data: bytes = self.fs.cat_file(full)
        except (FileNotFoundError, IsADirectoryError):
            return None
        return data

    def delete(self, path: str) -> None:
        full = self._full(path)
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(full)

    def list(self, prefix: str = "", limit: int = 10000) -> list[ObjectInfo]:
        """Objects under `prefix` (a folder, or '' for all), sorted by path."""
        base = self.root if not prefix else self._full(prefix.rstrip("/"))
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return []
        out: list[ObjectInfo] = []
        roots = (self.root + "/", self.root.lstrip("/") + "/")
        for name, info in sorted(found.items()):
            rel = next((name[len(r):] for r in roots if name.startswith(r)), name)
            if rel.startswith(PARTIAL + "/"):
                continue  # a write under way, or cut short
            modified = info.get("mtime") or info.get("LastModified") or info.get("created")
            out.append(ObjectInfo(rel, int(info.get("size") or 0),
                                  _timestamp(modified)))
            if len(out) >= limit:
                break
        return out


    def sweep_partial(self, older_than: float, now: float) -> int:
        """Remove temporary files of writes cut short (local disks only)."""
        folder = Path(self.root) / PARTIAL
        if not self.local or not folder.is_dir():
            return 0
        removed = 0
        for f in folder.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if now - f.stat().st_mtime > older_than:
                    f.unlink()
                    removed += 1
        return removed


def _timestamp(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    stamp = getattr(value, "timestamp", None)
    return float(stamp()) if callable(stamp) else None


def open_dataset(d: Dataset, data_dir: Path) -> DatasetFiles:
    if d.url is None:
        root = local_root(data_dir, d)
        return DatasetFiles(LocalFileSystem(), str(root.resolve()))
    fs, root = fsspec.url_to_fs(d.url)
    return DatasetFiles(fs, root)
