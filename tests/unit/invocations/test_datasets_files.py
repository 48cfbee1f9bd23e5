"""DatasetFiles on a local directory and on fsspec's memory://: whole-object writes,
reads, listings that hide `.partial/`, the sweep of writes cut short, and object names."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import fsspec
import pytest

from berth.invocations.datasets import (
    PARTIAL,
    BadObjectPath,
    DatasetFiles,
    local_root,
    object_path,
    open_dataset,
)
from berth.store.datasets import Dataset

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def dataset(url: str | None = None, name: str = "default") -> Dataset:
    return Dataset(id=1, project="p", name=name, url=url, description="", created_at=T0)


@pytest.fixture(params=["local", "memory"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatasetFiles]:
    if request.param == "local":
        yield open_dataset(dataset(), tmp_path)
        return
    root = f"/berth-test-{uuid.uuid4().hex}"
    yield open_dataset(dataset(f"memory://{root}"), tmp_path)
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


@pytest.fixture
def local(tmp_path: Path) -> DatasetFiles:
    return open_dataset(dataset(), tmp_path)


def names(f: DatasetFiles, prefix: str = "", limit: int = 10000) -> list[str]:
    return [o.path for o in f.list(prefix, limit)]


# -- object names ---------------------------------------------------------------------------

REFUSED = ["", "/x", "a//b", ".", "..", "a/.", "a/..", "./a", "../a", "a/../b", "a/./b", "a/",
           "/", "//", ".partial", ".partial/x", ".partial/a/b"]
ALLOWED = ["a", "a.json", "echo/r1.json", "a/b/c/d", ".hidden", "a/.partial/x", "..a", "a..",
           "..partial/x", "a b/c"]


@pytest.mark.parametrize("path", REFUSED)
def test_object_path_refuses(path: str) -> None:
    with pytest.raises(BadObjectPath) as err:
        object_path(path)
    assert (err.value.status, err.value.code) == (400, "invalid_path")


@pytest.mark.parametrize("path", ALLOWED)
def test_object_path_allows(path: str) -> None:
    assert object_path(path) == path


@pytest.mark.parametrize("path", ["", "..", ".partial/x", "a//b"])
def test_every_operation_checks_the_name(files: DatasetFiles, path: str) -> None:
    with pytest.raises(BadObjectPath):
        files.write(path, b"x")
    with pytest.raises(BadObjectPath):
        files.read(path)
    with pytest.raises(BadObjectPath):
        files.delete(path)
    if path:  # '' lists everything
        with pytest.raises(BadObjectPath):
            files.list(path)


# -- both filesystems ---------------------------------------------------------------------------


def test_write_read_list_delete(files: DatasetFiles) -> None:
    assert files.read("echo/a.json") is None and names(files) == []
    files.write("echo/a.json", b'{"a":1}')
    files.write("echo/b.json", b"{}")
    files.write("other/c.json", b"[]")
    assert files.read("echo/a.json") == b'{"a":1}'
    listed = files.list()
    assert [(o.path, o.size) for o in listed] == [
        ("echo/a.json", 7), ("echo/b.json", 2), ("other/c.json", 2)]
    assert all(o.modified_at is not None for o in listed)
    assert names(files, "echo") == names(files, "echo/") == ["echo/a.json", "echo/b.json"]
    assert names(files, "nothing") == []
    assert names(files, limit=2) == ["echo/a.json", "echo/b.json"]
    files.delete("echo/a.json")
    files.delete("echo/a.json")  # gone already: no error
    assert files.read("echo/a.json") is None
    assert names(files) == ["echo/b.json", "other/c.json"]


def test_a_write_replaces_the_whole_object(files: DatasetFiles) -> None:
    files.write("r.json", b"x" * 10000)
    files.write("r.json", b"short")
    assert files.read("r.json") == b"short"
    assert [(o.path, o.size) for o in files.list()] == [("r.json", 5)]


def test_reading_a_folder_is_no_object(files: DatasetFiles) -> None:
    files.write("echo/a.json", b"{}")
    assert files.read("echo") is None


# -- local disks: .partial/ ----------------------------------------------------------------------


def test_the_local_root_is_under_the_data_dir(tmp_path: Path) -> None:
    f = open_dataset(dataset(name="results"), tmp_path)
    assert f.local and f.root == str((tmp_path / "datasets" / "p" / "results").resolve())
    assert local_root(tmp_path, dataset(name="results")) == tmp_path / "datasets/p/results"
    f.write("echo/a.json", b"{}")
    assert (Path(f.root) / "echo" / "a.json").read_bytes() == b"{}"


def test_a_write_leaves_no_temporary_file(local: DatasetFiles) -> None:
    for n in range(3):
        local.write(f"echo/{n}.json", b"{}")
    assert list((Path(local.root) / PARTIAL).iterdir()) == []


def test_a_write_cut_short_leaves_the_old_object_and_only_a_hidden_partial(
        local: DatasetFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    local.write("r.json", b"old")

    def crash(_src: str, _dst: str) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        local.write("r.json", b"new and longer")
    monkeypatch.undo()
    assert local.read("r.json") == b"old"
    [partial] = list((Path(local.root) / PARTIAL).iterdir())
    assert partial.read_bytes() == b"new and longer"
    assert names(local) == ["r.json"]  # the partial file is not an object


def test_sweep_removes_only_partial_files_older_than_the_age(local: DatasetFiles) -> None:
    local.write("keep.json", b"{}")
    folder = Path(local.root) / PARTIAL
    old, fresh = folder / "old.tmp", folder / "fresh.tmp"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(old, (1000.0, 1000.0))
    os.utime(fresh, (2000.0, 2000.0))
    assert names(local) == ["keep.json"]
    assert local.sweep_partial(older_than=600.0, now=1600.0) == 0  # 600 s is not older
    assert local.sweep_partial(older_than=600.0, now=1601.0) == 1
    assert sorted(p.name for p in folder.iterdir()) == ["fresh.tmp"]
    assert local.sweep_partial(older_than=600.0, now=2601.0) == 1
    assert list(folder.iterdir()) == [] and local.read("keep.json") == b"{}"


def test_sweep_without_a_partial_folder_or_off_a_local_disk_is_nothing(tmp_path: Path) -> None:
    assert open_dataset(dataset(), tmp_path).sweep_partial(0.0, 1e12) == 0
    memory = open_dataset(dataset(f"memory:///berth-test-{uuid.uuid4().hex}"), tmp_path)
    assert not memory.local and memory.sweep_partial(0.0, 1e12) == 0


def test_a_local_url_is_a_local_disk_too(tmp_path: Path) -> None:
    f = open_dataset(dataset(f"file://{tmp_path}/elsewhere"), tmp_path)
    assert f.local
    f.write("a/b.json", b"{}")
    assert (tmp_path / "elsewhere" / "a" / "b.json").read_bytes() == b"{}"
    assert names(f) == ["a/b.json"]
