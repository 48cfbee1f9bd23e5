"""Fixtures for every test directory: the container test images and the private registry."""

from tests.containers.fixtures import private_registry, test_images

__all__ = ["private_registry", "test_images"]
