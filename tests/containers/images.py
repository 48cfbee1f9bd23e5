"""Test images built on this machine: no registry is reachable from the test machines.

A Debian bookworm minbase rootfs with python3 (debootstrap, ~30 s, cached as a tarball keyed
by `ROOTFS_VERSION`), `podman import`ed as `BASE_IMAGE`, then `podman build --network none`
of the model server (`model_server.py`) as `MODEL_IMAGES["v1"]` and `["v2"]` (~1 s each).
Every step is skipped when its result exists with the right `berth.test.version` label, and
runs under a file lock, so parallel sessions build once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOTFS_VERSION = "bookworm-minbase-python3-1"
BASE_IMAGE = "localhost/berth-test/base:1"
MODEL_REPO = "localhost/berth-test/model"
MODEL_VERSIONS = ("v1", "v2")
MODEL_IMAGES = {v: f"{MODEL_REPO}:{v}" for v in MODEL_VERSIONS}
LABEL = "berth.test.version"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SERVER = Path(__file__).with_name("model_server.py")

# Values are written in, not passed as build args: buildah 1.28's layer cache ignores
# --build-arg values (v2 came out as v1's image).
CONTAINERFILE = """\
FROM {base}
COPY model_server.py /srv/model_server.py
ENV MODEL_VERSION={version} PORT=8080 PYTHONUNBUFFERED=1
EXPOSE 8080
LABEL {label}={stamp}
CMD ["python3", "/srv/model_server.py"]
"""


class ImageBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class BuiltImages:
    base: str
    models: dict[str, str]  # version -> image name
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds (built now)

    @property
    def v1(self) -> str:
        return self.models["v1"]

    @property
    def v2(self) -> str:
        return self.models["v2"]


def cache_dir() -> Path:
    if explicit := os.environ.get("BERTH_TEST_CACHE"):
        return Path(explicit)
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg) / "berth-test"
    if os.geteuid() == 0:
        return Path("/var/cache/berth-test")
    return Path.home() / ".cache" / "berth-test"


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses for bookworm (BERTH_DEBIAN_MIRROR wins)."""
    if explicit := os.environ.get("BERTH_DEBIAN_MIRROR"):
        return explicit
    for path in [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]:
        if path.is_file() and path.name.endswith((".list", ".sources")):
            text = path.read_text(errors="replace")
            for uri in bookworm_uris(text, deb822=path.suffix == ".sources"):
                if "security" not in uri:
                    return uri.rstrip("/")
    return DEFAULT_MIRROR


def bookworm_uris(text: str, *, deb822: bool) -> list[str]:
    """The URIs of a sources file that serve the bookworm suite."""
    if not deb822:
        return re.findall(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s", text, re.M)
    uris = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
        if "bookworm" in fields.get("Suites", "").split():
            uris += fields.get("URIs", "").split()
    return uris


def run(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise ImageBuildError(f"{' '.join(args)} failed ({proc.returncode}): "
                              f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc


def image_label(image: str) -> str | None:
    """The image's `berth.test.version` label, or None when the image is not in the store."""
    proc = subprocess.run(
        ["podman", "image", "inspect", "--format", f'{{{{index .Labels "{LABEL}"}}}}', image],
        capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def image_id(image: str) -> str | None:
    proc = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", image],
                          capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


@contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def rootfs_tarball(cache: Path | None = None, mirror: str | None = None) -> tuple[Path, float]:
    """The cached rootfs tarball, built with debootstrap first when missing; (path, seconds)."""
    cache = cache or cache_dir()
    tarball = cache / f"rootfs-{ROOTFS_VERSION}.tar"
    if tarball.exists():
        return tarball, 0.0
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed (apt-get install debootstrap)")
    started = time.monotonic()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix="rootfs-") as tmp:
        root = Path(tmp) / "root"
        run(["debootstrap", "--variant=minbase", "--include=python3", "bookworm", str(root),
             mirror or debian_mirror()], timeout=900)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / junk).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = Path(tmp) / "rootfs.tar"
        run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."])
        os.replace(partial, tarball)
    return tarball, time.monotonic() - started


def ensure_base(cache: Path | None = None, mirror: str | None = None) -> dict[str, float]:
    timings: dict[str, float] = {}
    if image_label(BASE_IMAGE) == ROOTFS_VERSION:
        return timings
    tarball, seconds = rootfs_tarball(cache, mirror)
    if seconds:
        timings["debootstrap"] = seconds
    started = time.monotonic()
    run(["podman", "import", "--change", f"LABEL {LABEL}={ROOTFS_VERSION}",
         "--change", 'CMD ["/bin/bash"]', str(tarball), BASE_IMAGE])
    timings["import"] = time.monotonic() - started
    return timings


def model_stamp(version: str) -> str:
    digest = hashlib.sha256(CONTAINERFILE.encode() + SERVER.read_bytes()).hexdigest()[:12]
    return f"{ROOTFS_VERSION}-{version}-{digest}"


def containerfile_for(version: str) -> str:
    return CONTAINERFILE.format(base=BASE_IMAGE, version=version, label=LABEL,
                                stamp=model_stamp(version))


def ensure_models() -> dict[str, float]:
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="berth-model-") as context:
        shutil.copy(SERVER, Path(context) / "model_server.py")
        for version, image in MODEL_IMAGES.items():
            stamp = model_stamp(version)
            if image_label(image) == stamp:
                continue
            containerfile = Path(context) / f"Containerfile.{version}"
            containerfile.write_text(containerfile_for(version))
            replaced = image_id(image)
            started = time.monotonic()
            run(["podman", "build", "--network", "none", "--pull=never", "--quiet",
                 "-t", image, "-f", str(containerfile), context])
            timings[f"build {version}"] = time.monotonic() - started
            if replaced is not None:  # now untagged: drop it (refused if still in use)
                subprocess.run(["podman", "rmi", replaced], capture_output=True, timeout=60,
                               check=False)
    return timings


def ensure_test_images(cache: Path | None = None, mirror: str | None = None) -> BuiltImages:
    """Base and model images in podman's store, built only where missing or out of date."""
    with locked((cache or cache_dir()) / "images.lock"):
        timings = ensure_base(cache, mirror)
        timings |= ensure_models()
    return BuiltImages(BASE_IMAGE, dict(MODEL_IMAGES), timings)


if __name__ == "__main__":  # python -m tests.containers.images: build (or find) them now
    print(ensure_test_images())
