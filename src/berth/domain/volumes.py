"""A deployment's volumes: host paths or podman volumes mounted into its containers.

The field's own rules live here; the machine's (containers only, allowed host paths that
exist) in `validation.py`.
"""

from __future__ import annotations

import posixpath
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")  # a podman volume's name
# Where a mount would hide what the container needs to run.
RESERVED_TARGETS = ("/proc", "/sys", "/dev")


def _mount_path(value: str, what: str) -> str:
    """An absolute path as `podman --mount` takes it: normalised, no ',' '=' or control
    characters (they would split or bend the mount option)."""
    if not value.startswith("/"):
        raise ValueError(f"{what} must be an absolute path (start with '/')")
    if posixpath.normpath(value) != value or value.startswith("//"):
        raise ValueError(f"{what} {value!r} must be a normalised path: no '.', '..', '//' "
                         "or trailing '/'")
    if any(c in value for c in ",=") or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{what} {value!r} must not contain ',', '=' or control characters")
    return value


class Volume(BaseModel):
    """Model storage mounted into each replica's container (containers only)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=4096, description=(
        "An absolute host path (under the installation's `volume_host_paths`; it must "
        "exist), or the name of a podman volume."))
    target: str = Field(min_length=1, max_length=4096,
                        description="Where it appears in the container: an absolute path.")
    read_only: bool = Field(default=True, description="Replicas cannot write to it.")

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if value.startswith("/"):
            return _mount_path(value, "a host path")
        if not VOLUME_NAME_RE.match(value):
            raise ValueError(f"{value!r} is neither an absolute host path nor a volume name "
                             "(1-255 letters, digits, '_', '.', '-', starting with a letter "
                             "or digit)")
        return value

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        _mount_path(value, "target")
        if value == "/":
            raise ValueError("target must not be '/': the mount would hide the whole image")
        for reserved in RESERVED_TARGETS:
            if value == reserved or value.startswith(reserved + "/"):
                raise ValueError(f"target {value!r} is under {reserved}, which the container "
                                 "runtime provides")
        return value
