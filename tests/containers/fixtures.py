"""Session fixtures for tests that run real containers (imported by tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.containers.images import BuiltImages, ImageBuildError, ensure_test_images
from tests.containers.podman import fail_or_skip, require_podman
from tests.containers.registry import (
    PrivateRegistry,
    RegistryError,
    missing_tools,
    start_registry,
)


@pytest.fixture(scope="session")
def test_images() -> BuiltImages:
    """localhost/berth-test/model:v1 and :v2 in podman's store (built once per machine)."""
    require_podman()
    try:
        return ensure_test_images()
    except ImageBuildError as exc:
        fail_or_skip(f"cannot build the test images: {exc}")


@pytest.fixture(scope="session")
def private_registry(
    test_images: BuiltImages, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrivateRegistry]:
    """A registry on 127.0.0.1 with htpasswd auth holding model:v1 as private/model:v1."""
    if reason := missing_tools():
        fail_or_skip(reason)
    try:
        running = start_registry(tmp_path_factory.mktemp("registry"), test_images.v1)
    except RegistryError as exc:
        fail_or_skip(str(exc))
    try:
        yield running.registry
    finally:
        running.stop()
