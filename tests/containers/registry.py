"""A private registry on loopback: Debian's docker-registry with htpasswd auth, no TLS.

Pulling from it needs `--tls-verify=false` (or `registries_conf`, a registries.conf marking
it insecure, through CONTAINERS_REGISTRIES_CONF) and the credentials (`--creds user:pass`
or an `--authfile`).
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REGISTRY_BIN = "/usr/bin/docker-registry"
REPOSITORY = "private/model"


class RegistryError(RuntimeError):
    pass


@dataclass(frozen=True)
class PrivateRegistry:
    host: str  # 127.0.0.1:PORT
    user: str
    password: str
    image: str  # host/private/model:v1, pushed and not in the local store
    registries_conf: Path  # marks `host` insecure, for CONTAINERS_REGISTRIES_CONF

    @property
    def creds(self) -> str:
        return f"{self.user}:{self.password}"


@dataclass
class RunningRegistry:
    registry: PrivateRegistry
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        subprocess.run(["podman", "rmi", "--ignore", self.registry.image],
                       capture_output=True, timeout=60, check=False)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def missing_tools() -> str | None:
    if not Path(REGISTRY_BIN).exists():
        return f"{REGISTRY_BIN} is missing (apt-get install docker-registry)"
    if shutil.which("htpasswd") is None:
        return "htpasswd is missing (apt-get install apache2-utils)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_yaml(storage: Path, port: int, htpasswd: Path) -> str:
    return f"""\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
auth:
  htpasswd:
    realm: berth-test
    path: {htpasswd}
"""


def start_registry(workdir: Path, source_image: str, user: str = "berth") -> RunningRegistry:
    """Start a registry in `workdir` and push `source_image` to it as private/model:v1."""
    password = secrets.token_urlsafe(12)
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    htpasswd = workdir / "htpasswd"
    line = subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True, text=True,
                          check=True, timeout=30).stdout
    htpasswd.write_text(line.strip() + "\n")
    for _attempt in range(3):  # the free port may be taken between asking and binding
        port = free_port()
        config = workdir / "config.yml"
        config.write_text(config_yaml(workdir / "data", port, htpasswd))
        log = workdir / "registry.log"
        with log.open("ab") as out:
            proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=out,
                                    stderr=subprocess.STDOUT)
        if _wait_listening(port, proc):
            break
        proc.kill()
        proc.wait()
    else:
        raise RegistryError(f"docker-registry did not start: {log.read_text()[-2000:]}")
    host = f"127.0.0.1:{port}"
    conf = workdir / "registries.conf"
    conf.write_text(f'unqualified-search-registries = []\n\n[[registry]]\nlocation = "{host}"\n'
                    "insecure = true\n")
    image = f"{host}/{REPOSITORY}:v1"
    running = RunningRegistry(PrivateRegistry(host, user, password, image, conf), proc, log)
    push = subprocess.run(["podman", "push", "--quiet", "--tls-verify=false", "--creds",
                           f"{user}:{password}", source_image, image],
                          capture_output=True, text=True, timeout=300, check=False)
    if push.returncode != 0:
        running.stop()
        raise RegistryError(f"podman push to {host} failed: {push.stderr.strip()[-2000:]}")
    # `push SRC DEST` tags nothing locally; be sure no earlier run left the name behind
    subprocess.run(["podman", "rmi", "--ignore", image], capture_output=True, timeout=60,
                   check=False)
    return running


def _wait_listening(port: int, proc: subprocess.Popen[bytes], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 401:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return False
