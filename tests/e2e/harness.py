"""Start a real `berth serve` on free loopback ports and drive it over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

FAST = {
    "BERTH_TICK_SECONDS": "0.2",
    "BERTH_DRAIN_SECONDS": "0.3",
    "BERTH_STOP_GRACE_SECONDS": "3",
    "BERTH_BACKOFF_BASE_SECONDS": "0.2",
    "BERTH_BACKOFF_MAX_SECONDS": "2",
    "BERTH_PROGRESS_DEADLINE_SECONDS": "60",
    # Images with a command run as local processes here (nginx:latest, python, ...: no
    # registry is reachable); the container runtime's tests set "podman".
    "BERTH_IMAGE_RUNTIME": "none",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float = 30, every: float = 0.1,
             what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class BerthServer:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None,
                 args: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.args = args or []
        self.port = free_port()
        self.gateway_port = free_port()
        self.env = {**os.environ, **FAST, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.output = data_dir / "serve.out"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BerthServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "berth", "serve", "--data-dir", str(self.data_dir),
                 "--port", str(self.port), "--gateway-port", str(self.gateway_port),
                 *self.args],
                stdout=out, stderr=subprocess.STDOUT, env=self.env)
        wait_for(self._healthy, 30, what="berth serve to answer /healthz")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"berth serve exited: {self.output.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {self.token}"})

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    @property
    def owner(self) -> str:
        return (self.data_dir / "owner-id").read_text().strip()

    def replica_processes(self) -> list[psutil.Process]:
        """Every live process started for this server's replicas (by the owner marker)."""
        found = []
        for proc in psutil.process_iter():
            try:
                if proc.environ().get("BERTH_OWNER") == self.owner:
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found


class Api:
    """Small helpers over the native API for tests."""

    def __init__(self, http: httpx.Client, project: str = "e2e") -> None:
        self.http = http
        self.base = f"/v1/projects/{project}/deployments"

    def create(self, spec: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post(self.base, json=spec)
        assert r.status_code == 202, r.text
        return dict(r.json())

    def get(self, name: str) -> dict[str, Any]:
        r = self.http.get(f"{self.base}/{name}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def replicas(self, name: str) -> list[dict[str, Any]]:
        r = self.http.get(f"{self.base}/{name}/replicas")
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    def act(self, name: str, action: str) -> str:
        r = self.http.post(f"{self.base}/{name}/{action}")
        assert r.status_code == 202, r.text
        return str(r.json()["task_id"])

    def task(self, task_id: str, timeout: float = 60) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            t = dict(self.http.get(f"/v1/tasks/{task_id}").json())
            return t if t["state"] in ("FINISHED", "ERROR") else None
        return dict(wait_for(done, timeout, 0.1, f"task {task_id}"))

    def wait_status(self, name: str, status: str, timeout: float = 30) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            d = self.get(name)
            return d if d["status"] == status else None
        return dict(wait_for(reached, timeout, 0.1, f"{name} to be {status}"))

    def serving(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.replicas(name) if r["ready"] and r["state"] == "RUNNING"]


def echo_spec(name: str, replicas: int = 2, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "catalog/echo", "listening_port": 8080,
            "containers": [{"region": "local", "scale": {"min": replicas, "max": replicas}}],
            **extra}


def predict(port: int, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"http://127.0.0.1:{port}/predict", json=body, timeout=5)
    assert r.status_code == 200, r.text
    return dict(r.json())


def create_key(http: httpx.Client, project: str, name: str) -> str:
    r = http.post(f"/v1/projects/{project}/api-keys", json={"name": name})
    assert r.status_code == 201, r.text
    return str(r.json()["secret"])


def metric(gateway: str, name: str, **labels: str) -> float | None:
    """One sample from the gateway's /metrics, or None."""
    text = httpx.get(f"{gateway}/metrics", timeout=5).text
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None
