"""Load pieces for bench/gateway.py: tools, pinned servers, wrk, nginx, stream TTFB.

Everything listens on loopback only. Every process started here is registered with a
`Procs` and stopped by it, so a bench leaves nothing running even when it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

LOOPBACK = "127.0.0.1"
BODY = '{"inputs": "hello"}'


# -- tools and pinning -------------------------------------------------------------------

def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        if os.access(f"{folder}/{name}", os.X_OK):
            return f"{folder}/{name}"
    return None


def ensure_tools(packages: dict[str, str]) -> dict[str, str]:
    """Return binary -> path, installing the Debian packages of missing ones with apt-get."""
    missing = [pkg for binary, pkg in packages.items() if find_binary(binary) is None]
    if missing:
        print(f"installing {' '.join(missing)} with apt-get (missing)...", flush=True)
        if not _apt("install", "-y", "-q", *missing):
            print("apt-get install failed; running apt-get update first", flush=True)
            if not (_apt("update", "-q") and _apt("install", "-y", "-q", *missing)):
                raise SystemExit(f"could not install {' '.join(missing)} with apt-get")
    paths = {binary: find_binary(binary) for binary in packages}
    absent = [binary for binary, path in paths.items() if path is None]
    if absent:
        raise SystemExit(f"not found after install: {', '.join(absent)}")
    return {binary: str(path) for binary, path in paths.items()}


def _apt(*args: str) -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(["apt-get", *args], env=env, stdout=subprocess.DEVNULL, timeout=900)
    return done.returncode == 0


def taskset(cpu: int | None, argv: list[str]) -> list[str]:
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


@contextmanager
def affinity(cpu: int | None) -> Iterator[None]:
    """Run the block pinned to `cpu`: processes started inside inherit the pinning."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


# -- processes ---------------------------------------------------------------------------

class Procs:
    """Every process the bench starts; `stop_all` ends them, newest first."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], env: dict[str, str] | None = None,
              log: Path | None = None) -> subprocess.Popen[bytes]:
        out = log.open("ab") if log else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(argv, env={**os.environ, **(env or {})},
                                    stdout=out, stderr=subprocess.STDOUT)
        finally:
            if log:
                out.close()  # type: ignore[union-attr]
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], proc: subprocess.Popen[bytes], what: str,
               timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if check():
            return
        time.sleep(0.01)
    raise RuntimeError(f"{what} not ready after {timeout:.0f}s")


def _predict_ok(port: int) -> bool:
    try:
        r = httpx.post(f"http://{LOOPBACK}:{port}/predict", content=BODY, timeout=1,
                       headers={"Content-Type": "application/json"})
        return r.status_code == 200
    except httpx.HTTPError:
        return False


def start_echo(procs: Procs, cpu: int | None, replica: str) -> int:
    port = free_port()
    proc = procs.start(taskset(cpu, [sys.executable, "-m", "berth.catalog.echo"]),
                       env={"PORT": str(port), "ECHO_HOST": LOOPBACK,
                            "BERTH_REPLICA_ID": replica})
    wait_until(lambda: _predict_ok(port), proc, f"echo replica {replica}")
    return port


def raw_start_seconds(procs: Procs, cpu: int | None) -> float:
    """Baseline for cold start: spawn catalog/echo by hand until its first /predict answer."""
    port = free_port()
    started = time.perf_counter()
    proc = procs.start(taskset(cpu, [sys.executable, "-m", "berth.catalog.echo"]),
                       env={"PORT": str(port), "ECHO_HOST": LOOPBACK})
    try:
        wait_until(lambda: _predict_ok(port), proc, "raw echo")
        return time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(10)


# -- nginx -------------------------------------------------------------------------------

_NGINX_CONF = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
{logging}
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{key_map}
    upstream replicas {{
{servers}
        keepalive 64;
    }}
    server {{
        listen {host}:{port};
        location / {{
{key_check}
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
{forwarding}
        }}
    }}
}}
"""

# What Berth's gateway does per request besides relaying, done the nginx way: a JSON access
# line (buffered, as Berth's is), X-Forwarded-* and X-Request-Id to the replica and the id back
# to the client, and the API key checked (a map from the Authorization header) and not passed on.
_SAME_WORK = {
    "logging": """\
    log_format berth escape=json '{{"ts":$msec,"id":"$request_id","client":"$remote_addr",'
        '"method":"$request_method","path":"$uri","replica":"$upstream_addr","status":$status,'
        '"ms":$request_time,"ttfb_ms":"$upstream_header_time","key":"$berth_key"}}';
    access_log {prefix}/access.log berth buffer=64k flush=1s;""",
    "key_map": """\
    map $http_authorization $berth_key {{
        "Bearer {secret}" "bench";
        default "";
    }}""",
    "key_check": """\
            if ($berth_key = "") {{ return 401; }}""",
    "forwarding": """\
            proxy_set_header Authorization "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Request-Id $request_id;
            add_header X-Request-Id $request_id always;""",
}
_BARE = {"logging": "    access_log off;", "key_map": "", "key_check": "", "forwarding": ""}


def start_nginx(procs: Procs, binary: str, prefix: Path, upstreams: list[int],
                cpu: int | None, secret: str | None = None) -> int:
    """nginx in the foreground, 1 worker, keep-alive upstream to `upstreams`; its port.

    Bare without `secret`; with it, doing the per-request work Berth's gateway does (_SAME_WORK:
    clients must then send `Authorization: Bearer <secret>`).
    """
    prefix.mkdir(parents=True, exist_ok=True)
    prefix.chmod(0o755)  # a root master hands the worker to an unprivileged user
    port = free_port()
    servers = "\n".join(f"        server {LOOPBACK}:{p};" for p in upstreams)
    user = "user nobody nogroup;" if os.geteuid() == 0 else ""
    parts = _BARE if secret is None else {
        name: text.format(prefix=prefix, secret=secret) for name, text in _SAME_WORK.items()}
    conf = prefix / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(prefix=prefix, user=user, servers=servers,
                                       host=LOOPBACK, port=port, **parts))
    proc = procs.start(taskset(cpu, [binary, "-c", str(conf), "-p", str(prefix),
                                     "-g", "daemon off;"]), log=prefix / "stdout.log")
    wait_until(lambda: port_open(port), proc, "nginx")
    return port


# -- wrk ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers plus socket errors


def wrk_script(path: Path, token: str | None = None) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = '{BODY}'",
             'wrk.headers["Content-Type"] = "application/json"']
    if token:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    path.write_text("\n".join(lines) + "\n")
    return path


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str, percentile: str) -> float:
    found = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    if not found:
        raise RuntimeError(f"no {percentile}% latency in wrk output:\n{text}")
    return float(found[1]) * _UNITS[found[2]]


def parse_wrk(text: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    if not rps or not total:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return WrkResult(rps=float(rps[1]), p50_ms=_ms(text, "50"), p99_ms=_ms(text, "99"),
                     requests=int(total[1]),
                     errors=errors + (int(non2xx[1]) if non2xx else 0))


def run_wrk(binary: str, url: str, script: Path, connections: int, seconds: int,
            cpu: int | None) -> WrkResult:
    argv = taskset(cpu, [binary, "-t", "1", "-c", str(connections), "-d", f"{max(1, seconds)}s",
                         "--timeout", "5s", "--latency", "-s", str(script), url])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


# -- time to first byte of an event stream -----------------------------------------------

class StreamClient:
    """One keep-alive connection; times request sent -> first `data:` bytes of the answer."""

    def __init__(self, port: int, path: str, token: str | None = None) -> None:
        self.port = port
        body = b'{"a": 1, "b": 2}'
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.request = (f"POST {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n"
                        f"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                        f"{auth}Content-Length: {len(body)}\r\n\r\n").encode() + body
        self.sock: socket.socket | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def once(self) -> float:
        if self.sock is None:
            self.sock = socket.create_connection((LOOPBACK, self.port), timeout=10)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = self.sock
        started = time.perf_counter()
        sock.sendall(self.request)
        buf, first = b"", 0.0
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                self.close()
                break
            buf += chunk
            head, sep, body = buf.partition(b"\r\n\r\n")
            if not first and sep and b"data:" in body:
                first = time.perf_counter()
            if sep and _complete(head.lower(), body):
                break
        head = buf.partition(b"\r\n\r\n")[0].lower()
        if not head.startswith(b"http/1.1 200") or not first:
            self.close()
            raise RuntimeError(f"stream answer without an event: {buf[:300]!r}")
        if b"connection: close" in head:
            self.close()
        return (first - started) * 1000

    def samples(self, n: int, warmup: int = 5) -> list[float]:
        try:
            for _ in range(warmup):
                self.once()
            return [self.once() for _ in range(n)]
        finally:
            self.close()


def _complete(head: bytes, body: bytes) -> bool:
    if b"transfer-encoding: chunked" in head:
        return body.endswith(b"0\r\n\r\n") and b"[DONE]" in body
    length = re.search(rb"content-length:\s*(\d+)", head)
    return bool(length) and len(body) >= int(length[1])  # type: ignore[index]
