"""Runtime figures: the container runtime (podman) against the process runtime, running the
same model server code (tests/containers/model_server.py, a python3 stdlib HTTP server).

Two real `berth serve`s on free loopback ports, up together: "container" with
BERTH_IMAGE_RUNTIME=podman runs localhost/berth-test/model:v1 (the image's own command);
"process" with BERTH_IMAGE_RUNTIME=none runs the same image name with
`command: [python3, tests/containers/model_server.py]`, i.e. the same file as a local
process. Both specs carry the same probes on /healthz (startup every 0.2 s, readiness every
1 s: catalog/echo's). Runs alternate between the two sides.
(a) create -> ACTIVE, 1 replica, median of --runs, against starting the server by hand
    (python3 model_server.py / `podman run -d --init -p`) until GET /healthz answers;
(b) cold start: min 0, max 1, one fresh deployment per sample, the first request's
    latency through the gateway; same baselines;
(c) wrk (keep-alive POST /predict, -t 1, c=1 and c=16) to one replica of each, direct and
    through the gateway, plus the container straight at its bridge IP (no port forwarding),
    with the CPU each request cost the model server, the shim or conmon, and berth serve;
    every server and replica process pinned to one CPU, wrk to the other. Here both sides
    run model_server.py with TCP_NODELAY (a two-line wrapper; its own image built from the
    test base image, removed after): as it is, each keep-alive answer waits ~40 ms for the
    client's delayed ACK (Nagle), which hides everything else;
(d) what a replica costs besides the model server: the shim (process) or conmon + catatonit
    (container), RSS; and berth serve's idle CPU with that one replica (podman commands it
    runs included), against the same server with none.
Images are built (or found) with tests.containers.images.ensure_test_images().

Run: python bench/runtime.py [--runs 5] [--cold-samples 5] [--duration 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._load import LOOPBACK, WrkResult, ensure_tools, run_wrk, wrk_script
from bench._runtime_parts import (
    HAND,
    HAND_LABEL,
    NODELAY_IMAGE,
    build_nodelay,
    cpu_seconds,
    is_shim,
    network_note,
    pin,
    podman,
    print_table,
    rss_mib,
    server_cpu_percent,
)
from tests.containers.images import SERVER, ensure_test_images
from tests.containers.podman import podman_usable
from tests.e2e.harness import Api, BerthServer, wait_for

PROJECT = "bench"
PROBES = {"startup": {"http_get": {"path": "/healthz"}, "period_seconds": 0.2,
                      "failure_threshold": 100},
          "readiness": {"http_get": {"path": "/healthz"}, "period_seconds": 1}}
SERVER_ENV = {"BERTH_TICK_SECONDS": "0.5", "BERTH_DRAIN_SECONDS": "0"}


@dataclass
class Side:
    label: str  # "process" | "container"
    srv: BerthServer
    api: Api
    image: str
    server_file: Path = SERVER  # what the process side runs (the image's own file)

    @property
    def container(self) -> bool:
        return self.label == "container"

    def spec(self, name: str, lo: int = 1, hi: int = 1) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": name, "image": self.image, "listening_port": 8080, "probes": PROBES,
            "containers": [{"region": "local", "scale": {"min": lo, "max": hi}}]}
        if not self.container:
            spec["command"] = ["python3", str(self.server_file)]
            spec["envs"] = {"MODEL_VERSION": "v1", "PYTHONUNBUFFERED": "1"}
        return spec

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.api.http.get(f"{self.api.base}/{name}").json())

    def delete(self, name: str) -> None:
        r = self.api.http.delete(f"{self.api.base}/{name}")
        assert r.status_code == 202, r.text
        self.api.task(r.json()["task_id"], 120)

    def predict_url(self, name: str) -> str:
        return f"{self.srv.gateway}/{PROJECT}/{name}/predict"


# -- (a) create -> ACTIVE and (b) cold start ----------------------------------------------

def create_to_active(side: Side, name: str) -> float:
    started = time.perf_counter()
    side.api.create(side.spec(name))
    wait_for(lambda: side.status(name)["status"] == "ACTIVE", 120, 0.005, f"{name} ACTIVE")
    elapsed = time.perf_counter() - started
    side.delete(name)
    return elapsed


def cold_start(side: Side, name: str) -> float:
    side.api.create(side.spec(name, 0, 1))

    def at_zero() -> bool:
        d = side.status(name)
        return bool(d["status"] == "ACTIVE" and d["containers"][0]["deploy_status"]["total"] == 0)
    wait_for(at_zero, 60, 0.1, f"{name} ACTIVE at zero replicas")
    time.sleep(0.5)  # let the gateway's routing table settle on the empty deployment
    started = time.perf_counter()
    r = httpx.post(side.predict_url(name), json={"cold": 1}, timeout=60)
    elapsed = time.perf_counter() - started
    assert r.status_code == 200 and r.json()["version"] == "v1", f"{r.status_code} {r.text[:200]}"
    side.delete(name)
    return elapsed


def timing_rows(sides: list[Side], runs: int, measure: Callable[[Side, str], float],
                what: str) -> list[tuple[str, str, str, str, str]]:
    got: dict[str, list[float]] = {s.label: [] for s in sides}
    hand: dict[str, list[float]] = {s.label: [] for s in sides}
    for i in range(runs):  # interleaved, so drift on a shared machine hits both sides
        for side in sides:
            got[side.label].append(measure(side, f"{what}-{side.label[0]}-{i}"))
            hand[side.label].append(HAND[side.label][0](side.image))
    rows = []
    for side in sides:
        value, base = statistics.median(got[side.label]), statistics.median(hand[side.label])
        rows.append((side.label, f"{value * 1000:.0f} ms", f"{max(got[side.label]) * 1000:.0f} ms",
                     f"{base * 1000:.0f} ms ({HAND[side.label][1]})", f"{value / base:.2f}x"))
    proc, ctr = (statistics.median(got[s]) for s in ("process", "container"))
    hproc, hctr = (statistics.median(hand[s]) for s in ("process", "container"))
    rows.append(("container / process", f"{ctr / proc:.2f}x", "", f"{hctr / hproc:.2f}x", ""))
    return rows


# -- (c) throughput -----------------------------------------------------------------------

@dataclass
class Serving:
    """One ready replica of a side: where it answers and its processes."""

    side: Side
    name: str
    port: int
    pids: list[int]  # the replica's processes (shim + server, or conmon + catatonit + server)
    bridge_ip: str | None = None
    conmon: int | None = None
    init: int | None = None
    container_name: str | None = None


def serving(side: Side, name: str) -> Serving:
    side.api.task(side.api.create(side.spec(name))["task_id"], 120)
    side.api.wait_status(name, "ACTIVE", 60)
    (replica,) = side.api.serving(name)
    if not side.container:
        pids = [p.pid for p in side.srv.replica_processes()]
        return Serving(side, name, int(replica["port"]), pids)
    name_ = f"berth-{replica['id']}"
    (found,) = json.loads(podman("container", "inspect", name_))
    init, conmon = int(found["State"]["Pid"]), int(found["State"]["ConmonPid"])
    server = [c.pid for c in psutil.Process(init).children(recursive=True)]
    return Serving(side, name, int(replica["port"]), [conmon, init, *server],
                   found["NetworkSettings"]["IPAddress"] or None, conmon, init, name_)


PROCESS_DIRECT, CONTAINER_DNAT = "process, direct", "container, direct (host port, DNAT)"
CONTAINER_IP = "container, direct (bridge IP)"
PROCESS_GATEWAY, CONTAINER_GATEWAY = "process, via gateway", "container, via gateway"
AGAINST = {CONTAINER_DNAT: PROCESS_DIRECT, CONTAINER_IP: CONTAINER_DNAT,
           CONTAINER_GATEWAY: PROCESS_GATEWAY}


def cpu_groups(r: Serving) -> dict[str, list[int]]:
    """The replica's model server, what the runtime runs beside it, and its berth serve."""
    assert r.side.srv.proc is not None
    if r.side.container:
        helper = [p for p in (r.conmon, r.init) if p is not None]
    else:
        helper = [p for p in r.pids if is_shim(p)]
    return {"server": [p for p in r.pids if p not in helper], "helper": helper,
            "berth": [r.side.srv.proc.pid]}


@dataclass
class Measured:
    run: WrkResult
    cpu_us: dict[str, float]  # group -> CPU microseconds per request during the run


def throughput(ways: dict[str, tuple[str, Serving]], tools: dict[str, str], script: Path,
               args: argparse.Namespace, client_cpu: int | None) -> dict[tuple[int, str], Measured]:
    best: dict[tuple[int, str], Measured] = {}
    for c in args.connections:
        for round_ in range(1, args.rounds + 1):
            for way, (url, replica) in ways.items():
                print(f"wrk -c {c} {way}, round {round_} ...", file=sys.stderr, flush=True)
                run_wrk(tools["wrk"], url, script, c, 1, client_cpu)
                groups = cpu_groups(replica)
                before = {g: cpu_seconds(pids) for g, pids in groups.items()}
                got = run_wrk(tools["wrk"], url, script, c, args.duration, client_cpu)
                used = {g: 1e6 * (cpu_seconds(pids) - before[g]) / max(got.requests, 1)
                        for g, pids in groups.items()}
                if (c, way) not in best or got.rps > best[c, way].run.rps:
                    best[c, way] = Measured(got, used)
    return best


def throughput_rows(best: dict[tuple[int, str], Measured], connections: list[int]
                    ) -> list[tuple[str, ...]]:
    """One row per way and concurrency; each container way against the way it differs from
    by one thing (the runtime, or the port forwarding)."""
    rows: list[tuple[str, ...]] = []
    for c in connections:
        for way in dict.fromkeys(w for cc, w in best if cc == c):
            m, base = best[c, way], best.get((c, AGAINST.get(way, "")))
            run = m.run
            rows.append((f"c={c} {way}", f"{run.rps:,.0f}", f"{run.p50_ms:.2f} ms",
                         f"{run.p99_ms:.2f} ms",
                         f"{run.rps / base.run.rps:.2f}x" if base else "-",
                         f"{run.p50_ms - base.run.p50_ms:+.2f} ms" if base else "-",
                         AGAINST.get(way, "-"), *(f"{m.cpu_us[g]:.0f}" for g in
                                                  ("server", "helper", "berth")),
                         str(run.errors)))
    return rows


# -- (d) per-replica overhead ---------------------------------------------------------------

def rss_rows(replicas: dict[str, Serving]) -> list[tuple[str, ...]]:
    proc, ctr = replicas["process"], replicas["container"]
    shim = [p for p in proc.pids if is_shim(p)]
    server_p = [p for p in proc.pids if p not in shim]
    assert ctr.conmon is not None and ctr.init is not None
    extra_p = sum(map(rss_mib, shim))
    extra_c = rss_mib(ctr.conmon) + rss_mib(ctr.init)
    server_c = [p for p in ctr.pids if p not in (ctr.conmon, ctr.init)]
    rows: list[tuple[str, ...]] = [
        ("process: the shim (python -m berth.runtime.shim)", f"{extra_p:.1f} MiB", "baseline"),
        ("container: conmon", f"{rss_mib(ctr.conmon):.1f} MiB", ""),
        ("container: catatonit (--init, PID 1)", f"{rss_mib(ctr.init):.1f} MiB", ""),
        ("container: conmon + catatonit", f"{extra_c:.1f} MiB", f"{extra_c / extra_p:.2f}x"),
        ("the model server itself, process", f"{sum(map(rss_mib, server_p)):.1f} MiB", ""),
        ("the model server itself, in the container", f"{sum(map(rss_mib, server_c)):.1f} MiB",
         ""),
    ]
    return rows


def idle_rows(idle: dict[str, tuple[float, float]]) -> list[tuple[str, ...]]:
    """berth serve's idle CPU with one replica of each side, and with none (the baseline)."""
    return [(f"berth serve idle CPU, one {label} replica (none: {none:.1f} %)", f"{one:.1f} %",
             f"+{one - none:.1f} points") for label, (none, one) in idle.items()]


# -- the run ------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold-samples", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved wrk runs; best kept")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()
    if not 1 <= args.runs <= 20 or not 1 <= args.cold_samples <= 20 or args.duration > 60:
        parser.error("--runs and --cold-samples are 1..20, --duration at most 60")
    if (why := podman_usable()) is not None:
        raise SystemExit(f"podman cannot run Berth's containers here: {why}")
    tools = ensure_tools({"wrk": "wrk"})
    images = ensure_test_images()
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="berth-bench-runtime-") as tmp:
        servers = {
            "process": BerthServer(Path(tmp) / "process",
                                   env={**SERVER_ENV, "BERTH_IMAGE_RUNTIME": "none"}),
            "container": BerthServer(Path(tmp) / "container",
                                     env={**SERVER_ENV, "BERTH_IMAGE_RUNTIME": "podman"})}
        try:
            sides = []
            for label, srv in servers.items():
                srv.start()
                sides.append(Side(label, srv, Api(srv.client(), PROJECT), images.v1))
            for line in (servers["container"].output.read_text().splitlines()):
                if line.startswith("Containers"):
                    notes.append(f"berth serve (container side) printed: {line}")
            print("(a) create -> ACTIVE ...", file=sys.stderr, flush=True)
            rows_a = timing_rows(sides, args.runs, create_to_active, "create")
            print("(b) cold starts ...", file=sys.stderr, flush=True)
            rows_b = timing_rows(sides, args.cold_samples, cold_start, "cold")
            nodelay = build_nodelay(images.base, Path(tmp) / "nodelay")
            for side in sides:
                side.image, side.server_file = NODELAY_IMAGE, nodelay
            replicas = {s.label: serving(s, f"load-{s.label}") for s in sides}
            if server_cpu is not None:
                for srv in servers.values():
                    assert srv.proc is not None
                    pin(srv.proc.pid, server_cpu)
                for r in replicas.values():
                    for pid in r.pids:
                        pin(pid, server_cpu)
                notes.append(f"(c) both berth serves and every replica process pinned to CPU "
                             f"{server_cpu} (their threads too), wrk to CPU {client_cpu}")
            ctr = replicas["container"]
            notes.append(network_note(str(ctr.container_name), ctr.port, ctr.bridge_ip))
            proc = replicas["process"]
            ways = {PROCESS_DIRECT: (f"http://{LOOPBACK}:{proc.port}/predict", proc),
                    CONTAINER_DNAT: (f"http://{LOOPBACK}:{ctr.port}/predict", ctr),
                    CONTAINER_IP: (f"http://{ctr.bridge_ip}:8080/predict", ctr),
                    PROCESS_GATEWAY: (sides[0].predict_url("load-process"), proc),
                    CONTAINER_GATEWAY: (sides[1].predict_url("load-container"), ctr)}
            best = throughput(ways, tools, wrk_script(Path(tmp) / "post.lua"), args, client_cpu)
            print("(d) overhead ...", file=sys.stderr, flush=True)
            rows_d = rss_rows(replicas)
            idle: dict[str, tuple[float, float]] = {}
            for side in sides:
                one = server_cpu_percent(side.srv, args.idle_seconds)
                side.delete(f"load-{side.label}")
                time.sleep(1)
                idle[side.label] = (server_cpu_percent(side.srv, args.idle_seconds), one)
            rows_d += idle_rows(idle)
        finally:
            for srv in servers.values():
                srv.stop()
            subprocess.run(["podman", "rm", "--force", "--time", "0", "--filter",
                            f"label={HAND_LABEL}"], capture_output=True, timeout=60, check=False)
            subprocess.run(["podman", "rmi", "--ignore", NODELAY_IMAGE], capture_output=True,
                           timeout=60, check=False)
        left = podman("ps", "-a", "--filter", f"label=berth.owner={servers['container'].owner}",
                      "--format", "{{.Names}}").split()
        notes.append(f"containers left after both servers stopped: {len(left)}")
    print(f"(a) create -> ACTIVE, 1 replica, {images.v1} vs the same server file run as a "
          f"command, median of {args.runs}")
    print_table(("runtime", "berth", "max", "baseline (until GET /healthz answers)", "ratio"),
                rows_a)
    print(f"\n(b) cold start: min 0, max 1, first request through the gateway -> its answer, "
          f"n={args.cold_samples}")
    print_table(("runtime", "median", "max", "baseline (until GET /healthz answers)", "ratio"),
                rows_b)
    print(f"\n(c) wrk -t 1, POST /predict, keep-alive, best of {args.rounds} interleaved "
          f"{args.duration} s runs; model_server.py with TCP_NODELAY ({NODELAY_IMAGE})")
    print("CPU columns: microseconds of CPU per request, of the model server, of the shim or\n"
          "conmon + catatonit, and of that side's berth serve (its gateway, its log copying)")
    print_table(("way", "req/s", "p50", "p99", "ratio", "p50 added", "against", "server",
                 "shim|conmon", "berth", "errors"),
                throughput_rows(best, args.connections))
    print("\n(d) per replica, besides the model server")
    print_table(("what", "measured", "vs process"), rows_d)
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
