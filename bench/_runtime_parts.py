"""Pieces for bench/runtime.py: the model server started by hand (the baselines), the
no-delay variant of its image, pinning, and CPU, RSS and network reads.

Every container started here carries HAND_LABEL, and every process is ended before its
function returns: the bench leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import psutil
from bench._load import LOOPBACK, free_port
from tests.containers.images import SERVER
from tests.e2e.harness import BerthServer, wait_for

HAND_LABEL = "berth.bench=runtime"  # containers this script starts itself

# (c) and (d) run model_server.py with Nagle's algorithm off: it writes its head and its body
# in two sends, so on a kept-alive connection each answer's body waits for the client's
# delayed ACK (~40 ms: 22 req/s at c=1, whatever the runtime).
NODELAY_IMAGE = "localhost/berth-bench/model:nodelay"
NODELAY_SERVER = """\
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_server
model_server.Handler.disable_nagle_algorithm = True
model_server.main()
"""
NODELAY_CONTAINERFILE = """\
FROM {base}
COPY model_server.py nodelay_server.py /srv/
ENV MODEL_VERSION=v1 PORT=8080 PYTHONUNBUFFERED=1
CMD ["python3", "/srv/nodelay_server.py"]
"""


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).is_success
    except httpx.HTTPError:
        return False


def podman(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                          check=True)
    return done.stdout


def build_nodelay(base: str, folder: Path) -> Path:
    """NODELAY_IMAGE in podman's store, and the same files in `folder`: the server to run."""
    folder.mkdir()
    (folder / "model_server.py").write_bytes(SERVER.read_bytes())
    (folder / "nodelay_server.py").write_text(NODELAY_SERVER)
    (folder / "Containerfile").write_text(NODELAY_CONTAINERFILE.format(base=base))
    podman("build", "--network", "none", "--pull=never", "--quiet", "-t", NODELAY_IMAGE,
           str(folder), timeout=300)
    return folder / "nodelay_server.py"


# -- baselines: the same server started by hand ------------------------------------------

def hand_process(_image: str) -> float:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(["python3", str(SERVER)], env={**os.environ, "PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: healthy(f"http://{LOOPBACK}:{port}/healthz"), 30, 0.005, "hand start")
        return time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(10)


def hand_container(image: str) -> float:
    port = free_port()
    name = f"berth-bench-hand-{port}"
    started = time.perf_counter()
    podman("run", "--detach", "--init", "--name", name, "--label", HAND_LABEL,
           "--publish", f"{LOOPBACK}:{port}:8080/tcp", "--log-driver", "k8s-file", image)
    try:
        wait_for(lambda: healthy(f"http://{LOOPBACK}:{port}/healthz"), 30, 0.005, "hand run")
        return time.perf_counter() - started
    finally:
        podman("rm", "--force", "--time", "0", name)


HAND: dict[str, tuple[Callable[[str], float], str]] = {
    "process": (hand_process, "python3 model_server.py by hand"),
    "container": (hand_container, "podman run -d --init -p by hand"),
}


def print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(f"{c:<{w}}" for c, w in zip(r, widths, strict=True)).rstrip())


def pin(pid: int, cpu: int) -> None:
    """`pid` and each of its threads, and its descendants', to `cpu` (threads and processes
    made later inherit it: podman commands the server runs, the servers' connection threads)."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for proc in procs:
        for thread in proc.threads():
            os.sched_setaffinity(thread.id, {cpu})


def is_shim(pid: int) -> bool:
    return "berth.runtime.shim" in " ".join(psutil.Process(pid).cmdline())


def cpu_seconds(pids: list[int]) -> float:
    return sum(float(t.user + t.system) for t in (psutil.Process(p).cpu_times() for p in pids))


def rss_mib(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def server_cpu_percent(srv: BerthServer, seconds: float) -> float:
    """berth serve's CPU, itself and the children it reaped (podman commands), over `seconds`."""
    assert srv.proc is not None
    proc = psutil.Process(srv.proc.pid)

    def used() -> float:
        t = proc.cpu_times()
        return float(t.user + t.system + t.children_user + t.children_system)
    before, started = used(), time.monotonic()
    time.sleep(seconds)
    return 100.0 * (used() - before) / (time.monotonic() - started)


def network_note(container: str, port: int, bridge_ip: str | None) -> str:
    """How the container's published port reaches it: network mode, DNAT rules, holder."""
    (found,) = json.loads(podman("container", "inspect", container))
    mode = found["HostConfig"]["NetworkMode"]
    backend = podman("info", "--format", "{{.Host.NetworkBackend}}").strip()
    rules = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True,
                           timeout=30, check=False).stdout
    dnat = [r for r in rules.splitlines() if f"--dport {port} " in r and "DNAT" in r]
    slirp = [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "slirp4netns"]
    holder = [c for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port
              and c.status == psutil.CONN_LISTEN]
    held_by = psutil.Process(holder[0].pid).name() if holder and holder[0].pid else "nobody"
    return (f"container network: {mode} ({backend}); {LOOPBACK}:{port} -> "
            f"{bridge_ip}:8080 by {len(dnat)} iptables DNAT rule(s), the host port held "
            f"open by {held_by}; slirp4netns processes: {len(slirp)}")
