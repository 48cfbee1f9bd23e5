"""Control-plane figures: create -> ACTIVE time, API latency with 1,000 deployments, RSS, CPU.

Each figure is printed beside a baseline measured in the same run:
- create -> ACTIVE against starting the same echo process by hand and polling /healthz;
- API GET/list latency against GET /healthz on the same server (the HTTP stack's floor);
- server RSS/CPU with 1,000 deployments against the same server empty.

Run: python bench/control_plane.py [--deployments 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.harness import Api, BerthServer, echo_spec, free_port, wait_for


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def raw_echo_start() -> float:
    """Baseline: spawn catalog/echo directly and poll until /healthz answers."""
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "berth.catalog.echo"],
                            env={**os.environ, "PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success
            except httpx.HTTPError:
                return False
        wait_for(healthy, 30, 0.005)
        return time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait()


def create_to_active(api: Api, name: str, replicas: int) -> float:
    started = time.perf_counter()
    api.create(echo_spec(name, replicas))
    wait_for(lambda: api.http.get(f"{api.base}/{name}").json()["status"] == "ACTIVE", 60, 0.005)
    elapsed = time.perf_counter() - started
    api.task(api.http.delete(f"{api.base}/{name}").json()["task_id"])
    return elapsed


def latencies(http: httpx.Client, path: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = http.get(path)
        out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
    return out


def usage(pid: int, seconds: float = 3.0) -> tuple[float, float]:
    proc = psutil.Process(pid)
    proc.cpu_percent()
    time.sleep(seconds)
    return proc.cpu_percent(), proc.memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        srv = BerthServer(Path(tmp) / "data",
                          env={"BERTH_TICK_SECONDS": "0.5", "BERTH_DRAIN_SECONDS": "0"}).start()
        try:
            assert srv.proc is not None
            with srv.client() as http:
                api = Api(http, project="bench")
                raw = statistics.median(raw_echo_start() for _ in range(args.runs))
                for replicas in (1, 2):
                    t = statistics.median(create_to_active(api, f"bench-{replicas}-{i}", replicas)
                                          for i in range(args.runs))
                    rows.append((f"create -> ACTIVE, {replicas} replica(s), median",
                                 f"{t * 1000:.0f} ms", f"{raw * 1000:.0f} ms (raw echo start)",
                                 f"{t / raw:.2f}x"))
                cpu0, rss0 = usage(srv.proc.pid)
                for i in range(args.deployments):
                    spec = echo_spec(f"idle-{i:05d}", 0)
                    spec["containers"][0]["scale"]["max"] = 1
                    r = http.post(api.base, json=spec)
                    assert r.status_code == 202, r.text
                wait_for(lambda: http.get(f"{api.base}/idle-{args.deployments - 1:05d}")
                         .json()["status"] == "ACTIVE", 120, 0.2)
                floor = latencies(http, "/healthz", args.requests)
                get = latencies(http, f"{api.base}/idle-00500", args.requests)
                page = latencies(http, f"{api.base}?limit=100", max(args.requests // 5, 20))
                full = latencies(http, api.base, max(args.requests // 30, 10))
                for label, values in (("GET one deployment", get),
                                      ("list, 100 per page", page),
                                      (f"list all {args.deployments}", full)):
                    for q, name in ((0.5, "p50"), (0.99, "p99")):
                        base = pct(floor, q)
                        rows.append((f"API {label}, {name}", f"{pct(values, q):.2f} ms",
                                     f"{base:.2f} ms (GET /healthz)",
                                     f"{pct(values, q) / base:.1f}x"))
                cpu1, rss1 = usage(srv.proc.pid)
                rows.append((f"server RSS, {args.deployments} deployments", f"{rss1:.0f} MiB",
                             f"{rss0:.0f} MiB (empty)", f"{rss1 / rss0:.2f}x"))
                rows.append((f"server CPU idle, {args.deployments} deployments",
                             f"{cpu1:.1f} %", f"{cpu0:.1f} % (empty)", "-"))
        finally:
            srv.stop()
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'berth':>12}  {'baseline':<30}  ratio")
    for label, value, base, ratio in rows:
        print(f"{label:<{width}}  {value:>12}  {base:<30}  {ratio}")


if __name__ == "__main__":
    main()
