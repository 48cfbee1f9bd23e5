from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Api, BerthServer, wait_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    srv = BerthServer(tmp_path_factory.mktemp("berth")).start()
    try:
        yield srv
    finally:
        owner = srv.owner
        srv.stop()
        assert srv.proc is not None and srv.proc.returncode is not None
        # No orphan replica survives a server shutdown.
        wait_for(lambda: not srv.replica_processes(), 10, what=f"replicas of {owner} gone")


@pytest.fixture
def api(server: BerthServer) -> Iterator[Api]:
    with server.client() as http:
        yield Api(http)


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[BerthServer]:
    srv = BerthServer(tmp_path / "data")
    try:
        yield srv
    finally:
        srv.stop()
        if (srv.data_dir / "owner-id").exists():
            for proc in srv.replica_processes():
                proc.kill()
