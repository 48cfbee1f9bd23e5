from collections.abc import Iterator

import httpx
import pytest

from berth.client import BerthClient
from tests.fakes.http import FakeServer


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def client(server: FakeServer) -> Iterator[BerthClient]:
    with BerthClient(token="s3cret", transport=httpx.MockTransport(server)) as c:
        yield c
