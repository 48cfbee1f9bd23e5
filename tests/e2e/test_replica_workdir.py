"""A replica runs in a directory of its own, so a file server it runs cannot reach the
server's files; the data directory and its files are private to the server's user."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.harness import Api, BerthServer, wait_for


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BerthServer]:
    """`berth serve` started as the quickstart does: in a directory that also holds its
    data directory `.berth`, and a file of the user's."""
    (tmp_path / "notes.txt").write_text("the user's own file")
    monkeypatch.chdir(tmp_path)  # the server inherits it
    old = os.umask(0o022)  # the usual umask, which made the files 0644
    srv = BerthServer(tmp_path / ".berth")
    try:
        srv.start()
    finally:
        os.umask(old)
    try:
        yield srv
    finally:
        srv.stop()
        for proc in srv.replica_processes():
            proc.kill()


def test_a_file_server_replica_cannot_serve_the_servers_files(served: BerthServer) -> None:
    with served.client() as http:
        api = Api(http)
        spec = {"name": "files", "image": "python",
                "command": [sys.executable, "-m", "http.server", "${PORT}", "--bind",
                            "127.0.0.1"],
                "containers": [{"region": "local", "scale": {"min": 1, "max": 1}}]}
        assert api.task(api.create(spec)["task_id"])["state"] == "FINISHED"
        address = api.get("files")["address"]
        [row] = api.serving("files")

        listing = httpx.get(f"{address}/", timeout=10)
        assert listing.status_code == 200  # the replica serves: its own, empty directory
        for leaked in ("/.berth/admin-token", "/.berth/berth.db", "/.berth/credentials.key",
                       "/notes.txt", "/admin-token", "/berth.db"):
            assert httpx.get(address + leaked, timeout=10).status_code == 404, leaked
        assert ".berth" not in listing.text and "notes.txt" not in listing.text

        workdir = served.data_dir / "replicas" / row["id"]
        members = psutil.Process(row["pid"]).children(recursive=True)
        assert {Path(p.cwd()) for p in members} == {workdir.resolve()}
        assert stat.S_IMODE(workdir.stat().st_mode) == 0o700

        task = api.task(http.delete(f"{api.base}/files").json()["task_id"])
        assert task["state"] == "FINISHED"
        wait_for(lambda: not workdir.exists(), 15, what=f"{workdir} removed")


def test_the_data_directory_and_its_files_are_private(served: BerthServer) -> None:
    data = served.data_dir
    wait_for(lambda: (data / "berth.db-wal").exists(), 15, what="the database's WAL file")
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = ["berth.db", "berth.db-wal", "berth.db-shm", "berth.log", "access.log",
             "admin-token", "owner-id"]
    modes = {name: stat.S_IMODE((data / name).stat().st_mode) for name in files
             if (data / name).exists()}
    assert modes == dict.fromkeys(files, 0o600), modes
