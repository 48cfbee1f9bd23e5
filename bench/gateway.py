"""Data-plane figures: Berth's gateway against a replica hit directly and against nginx.

One run drives the same load (small JSON POST, keep-alive, wrk with 1 thread at fixed
concurrency 1, 16 and 64) four ways:
- direct: straight to one catalog/echo replica;
- nginx bare: nginx with 1 worker as a reverse proxy with a keep-alive upstream to two echo
  replicas, doing nothing else (access log off);
- nginx (the baseline): the same nginx doing the per-request work Berth's gateway must do:
  check an API key, write a JSON access-log line, pass X-Forwarded-For/Proto/Host and an
  X-Request-Id to the replica and the id back (bench/_load.py, _SAME_WORK);
- berth: through `berth serve`'s gateway with an API key, two replicas, metrics and the
  access log on;
then cold start (request to a scaled-to-zero deployment -> full answer, against starting
echo by hand) and time to first byte of an event stream through the gateway and direct.
Servers (nginx, echo, berth serve and its replicas) are pinned to one CPU, wrk and this
script's own clients to another. wrk and nginx come from Debian, installed if missing.

Targets: berth req/s >= 0.8x nginx's; p50 added over direct <= 0.5 ms; cold start <= 1 s;
stream TTFB <= direct + 2 ms; the replica hit directly >= 2x the bare nginx rate. With every
server on one CPU and a closed loop of c requests, p50 is about c / throughput (Little's law):
c=1 shows the latency a proxy adds, c=16 and c=64 mostly its throughput.

Run: python bench/gateway.py [--duration 6] [--rounds 3] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import astuple, dataclass
from functools import partial
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._load import (
    BODY,
    LOOPBACK,
    Procs,
    StreamClient,
    WrkResult,
    affinity,
    ensure_tools,
    port_open,
    raw_start_seconds,
    run_wrk,
    start_echo,
    start_nginx,
    wrk_script,
)
from tests.e2e.harness import BerthServer, wait_for

DEPLOYMENT = "bench-echo"
TARGET_RPS_VS_NGINX = 0.8
TARGET_ADDED_P50_MS = 0.5
TARGET_COLD_S = 1.0
TARGET_TTFB_ADDED_MS = 2.0
DIRECT_VS_NGINX = 2.0
NGINX_SECRET = "bk_nginx-bench-secret"


@dataclass
class Berth:
    """A ready Berth gateway in front of DEPLOYMENT."""

    srv: BerthServer
    http: httpx.Client
    project: str
    secret: str

    def path(self, name: str = DEPLOYMENT, suffix: str = "") -> str:
        return f"/{self.project}/{name}/predict{suffix}"

    def url(self, name: str = DEPLOYMENT, suffix: str = "") -> str:
        return f"http://{LOOPBACK}:{self.srv.gateway_port}{self.path(name, suffix)}"

    @property
    def deployments(self) -> str:
        return f"/v1/projects/{self.project}/deployments"

    def predict(self, name: str, timeout: float) -> httpx.Response:
        return httpx.post(self.url(name), content=BODY, timeout=timeout,
                          headers={"Content-Type": "application/json",
                                   "Authorization": f"Bearer {self.secret}"})


def setup_berth(srv: BerthServer, project: str) -> tuple[Berth | None, str]:
    """Key, deployment, first answer through the gateway: a Berth, or why there is none."""
    if not port_open(srv.gateway_port):
        return None, f"gateway not available (connection refused on {LOOPBACK}:{srv.gateway_port})"
    http = srv.client()
    r = http.post(f"/v1/projects/{project}/api-keys", json={"name": "bench"})
    if r.status_code != 201:
        return None, f"creating an API key answered {r.status_code}: {r.text[:150]}"
    berth = Berth(srv, http, project, str(r.json()["secret"]))
    spec = {"name": DEPLOYMENT, "image": "catalog/echo", "listening_port": 8080,
            "api_keys": ["bench"],
            "containers": [{"region": "local", "scale": {"min": 2, "max": 2}}]}
    r = http.post(berth.deployments, json=spec)
    if r.status_code != 202:
        return None, f"creating {DEPLOYMENT} answered {r.status_code}: {r.text[:150]}"
    try:
        wait_for(lambda: http.get(f"{berth.deployments}/{DEPLOYMENT}").json()["status"]
                 == "ACTIVE", 60, 0.1, f"{DEPLOYMENT} ACTIVE")
        last: list[str] = []

        def answers() -> bool:
            try:
                r = berth.predict(DEPLOYMENT, 5)
            except httpx.HTTPError as exc:
                last[:] = [repr(exc)]
                return False
            last[:] = [f"{r.status_code} {r.text[:150]}"]
            return r.status_code == 200 and "echo" in r.json()
        wait_for(answers, 10, 0.05, "an answer through the gateway")
    except AssertionError as exc:
        return None, f"gateway did not serve {DEPLOYMENT}: {exc}"
    return berth, ""


def cold_starts(berth: Berth, samples: int) -> list[float]:
    """One fresh scaled-to-zero deployment per sample: seconds from request to answer."""
    names = [f"bench-cold-{i}" for i in range(samples)]
    for name in names:
        spec = {"name": name, "image": "catalog/echo", "listening_port": 8080, "timeout": 5,
                "api_keys": ["bench"], "containers": [{"scale": {"min": 0, "max": 1}}]}
        r = berth.http.post(berth.deployments, json=spec)
        assert r.status_code == 202, r.text

    def at_zero(name: str) -> bool:
        d = berth.http.get(f"{berth.deployments}/{name}").json()
        return bool(d["status"] == "ACTIVE"
                    and d["containers"][0]["deploy_status"]["total"] == 0)
    out = []
    for name in names:
        wait_for(partial(at_zero, name), 60, 0.1, f"{name} ACTIVE at zero replicas")
        time.sleep(0.5)  # let the gateway's routing table settle on the empty deployment
        started = time.perf_counter()
        r = berth.predict(name, 30)
        elapsed = time.perf_counter() - started
        assert r.status_code == 200 and "echo" in r.json(), f"{r.status_code} {r.text[:200]}"
        out.append(elapsed)
    return out


def metrics_note(berth: Berth) -> str:
    try:
        r = httpx.get(f"http://{LOOPBACK}:{berth.srv.gateway_port}/metrics", timeout=5)
    except httpx.HTTPError as exc:
        return f"gateway /metrics: {exc!r}"
    lines = [line for line in r.text.splitlines() if line and not line.startswith("#")]
    return f"gateway /metrics answered {r.status_code} with {len(lines)} samples"


def pinning_note(srv: BerthServer, cpu: int | None) -> str:
    if cpu is None or srv.proc is None:
        return "no pinning (fewer than 2 CPUs)"
    procs = [psutil.Process(srv.proc.pid), *srv.replica_processes()]
    wrong = [p.pid for p in procs if p.cpu_affinity() != [cpu]]
    return (f"berth serve and its {len(procs) - 1} replica processes (shims included) "
            f"pinned to CPU {cpu}"
            if not wrong else f"NOT pinned to CPU {cpu}: pids {wrong}")


# -- the table -------------------------------------------------------------------------------

@dataclass
class Row:
    measure: str
    rps: str = "-"
    p50: str = "-"
    p99: str = "-"
    vs_nginx: str = "-"
    added: str = "-"
    target: str = "-"
    result: str = "-"


HEADER = Row("measure", "req/s", "p50", "p99", "vs nginx", "added vs direct", "target",
             "result")


def ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load_rows(c: int, runs: dict[str, WrkResult | str]) -> list[Row]:
    """One row per way; ratios against nginx doing Berth's work (the target's baseline), and
    against bare nginx in the 'vs nginx' cell too ("x / x bare")."""
    direct, bare, nginx = runs["direct"], runs["nginx-bare"], runs["nginx"]
    targets = {"direct": f">= {DIRECT_VS_NGINX:g}x bare nginx (replica not the bottleneck)",
               "nginx-bare": "reference", "nginx": "baseline",
               "berth": f">= {TARGET_RPS_VS_NGINX:g}x nginx, +p50 <= {TARGET_ADDED_P50_MS:g} ms"}
    labels = {"direct": "direct, 1 replica",
              "nginx-bare": "nginx bare (no log, no key, no forwarding headers)",
              "nginx": "nginx doing Berth's work (key, JSON log, X-Forwarded-*, id)",
              "berth": "berth, 2 replicas, key + metrics + log"}
    rows = []
    for name, run in runs.items():
        row = Row(f"c={c} {labels[name]}", target=targets[name])
        rows.append(row)
        if isinstance(run, str):
            row.result = f"n/a: {run}"
            continue
        row.rps, row.p50, row.p99 = f"{run.rps:,.0f}", ms(run.p50_ms), ms(run.p99_ms)
        row.result = f"{run.errors} errors of {run.requests}; " if run.errors else ""
        if isinstance(nginx, WrkResult):
            row.vs_nginx = f"{run.rps / nginx.rps:.2f}x"
            if isinstance(bare, WrkResult) and name == "berth":
                row.vs_nginx += f" / {run.rps / bare.rps:.2f}x bare"
        if isinstance(direct, WrkResult) and name != "direct":
            row.added = f"{run.p50_ms - direct.p50_ms:+.2f} ms"
        if name == "direct" and isinstance(bare, WrkResult):
            # One request at a time, every hop waits on the client: the check needs a load.
            row.result += (verdict(run.rps >= DIRECT_VS_NGINX * bare.rps) if c > 1
                           else "- (c=1 is latency-bound)")
        elif name == "berth" and isinstance(nginx, WrkResult) and isinstance(direct, WrkResult):
            fast = run.rps >= TARGET_RPS_VS_NGINX * nginx.rps
            near = run.p50_ms - direct.p50_ms <= TARGET_ADDED_P50_MS
            row.result += "met" if fast and near else "MISSED (" + ", ".join(
                what for what, ok in (("req/s", fast), ("p50", near)) if not ok) + ")"
        row.result = row.result or "-"
    return rows


FAILURES = (AssertionError, RuntimeError, OSError, httpx.HTTPError)


def fill_cold(row: Row, berth: Berth, samples: int, raw: float) -> None:
    try:
        got = cold_starts(berth, samples)
    except FAILURES as exc:
        row.result = f"failed: {str(exc)[:200]}"
        return
    row.p50, row.p99 = ms(statistics.median(got) * 1000), ms(max(got) * 1000)
    row.added = f"+{(statistics.median(got) - raw) * 1000:.0f} ms"
    row.result = verdict(statistics.median(got) <= TARGET_COLD_S)


def fill_ttfb(row: Row, berth: Berth, samples: int, direct_median: float) -> None:
    client = StreamClient(berth.srv.gateway_port, berth.path(suffix="/stream"), berth.secret)
    try:
        got = client.samples(samples)
    except FAILURES as exc:
        row.result = f"failed: {str(exc)[:200]}"
        return
    added = statistics.median(got) - direct_median
    row.p50, row.p99, row.added = ms(statistics.median(got)), ms(pct(got, 0.99)), f"{added:+.2f} ms"
    row.result = verdict(added <= TARGET_TTFB_ADDED_MS)


def render(rows: list[Row]) -> str:
    table = [astuple(HEADER), *(astuple(r) for r in rows)]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(f"{cell:<{w}}" for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in table)


def markdown(rows: list[Row], notes: list[str]) -> str:
    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cells) + " |"
    out = [line(astuple(HEADER)), line(tuple("---" for _ in astuple(HEADER)))]
    out += [line(astuple(r)) for r in rows]
    return "\n".join(out + [""] + [f"- {n}" for n in notes]) + "\n"


# -- the run ---------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each way, interleaved; the best is shown (a shared "
                             "machine's interference only ever slows a run down)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of wrk before each")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--cold-samples", type=int, default=5)
    parser.add_argument("--ttfb-samples", type=int, default=50)
    parser.add_argument("--project", default="bench")
    parser.add_argument("--tick", default="0.2", help="BERTH_TICK_SECONDS for berth serve")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args()
    tools = ensure_tools({"wrk": "wrk", "nginx": "nginx"})
    two = len(os.sched_getaffinity(0)) >= 2
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (cpus[0], cpus[1]) if two else (None, None)
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    rows: list[Row] = []
    notes = [f"servers on CPU {server_cpu}, wrk and clients on CPU {client_cpu}; "
             f"wrk -t 1, {args.duration:g} s per run after {args.warmup:g} s of warm-up, "
             f"best of {args.rounds} interleaved rounds per way; "
             f"POST {BODY}"] if two else ["fewer than 2 CPUs: nothing pinned"]
    procs = Procs()
    srv: BerthServer | None = None
    with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            replicas = [start_echo(procs, server_cpu, f"echo-{i}") for i in range(2)]
            bare_port = start_nginx(procs, tools["nginx"], tmp / "nginx-bare", replicas,
                                    server_cpu)
            nginx_port = start_nginx(procs, tools["nginx"], tmp / "nginx", replicas, server_cpu,
                                     secret=NGINX_SECRET)
            srv = BerthServer(tmp / "data", env={"BERTH_TICK_SECONDS": args.tick})
            try:
                with affinity(server_cpu):
                    srv.start()
                berth, why = setup_berth(srv, args.project)
            except FAILURES as exc:
                berth, why = None, f"berth serve or its setup failed: {exc}"
            plain, auth = wrk_script(tmp / "post.lua"), tmp / "post-auth.lua"
            urls: dict[str, tuple[str, Path] | str] = {
                "direct": (f"http://{LOOPBACK}:{replicas[0]}/predict", plain),
                "nginx-bare": (f"http://{LOOPBACK}:{bare_port}/predict", plain),
                "nginx": (f"http://{LOOPBACK}:{nginx_port}/predict",
                          wrk_script(tmp / "post-nginx.lua", NGINX_SECRET)),
                "berth": (berth.url(), wrk_script(auth, berth.secret)) if berth else why}
            for c in args.connections:
                runs: dict[str, WrkResult | str] = {}
                for round_ in range(1, args.rounds + 1):  # interleaved: drift hits every way
                    for name, target in urls.items():
                        if isinstance(target, str):
                            runs[name] = target
                            continue
                        print(f"wrk -c {c} {name}, round {round_} ...", file=sys.stderr,
                              flush=True)
                        run_wrk(tools["wrk"], *target, c, args.warmup, client_cpu)
                        got = run_wrk(tools["wrk"], *target, c, args.duration, client_cpu)
                        best = runs.get(name)
                        if not isinstance(best, WrkResult) or got.rps > best.rps:
                            runs[name] = got
                rows += load_rows(c, runs)
            print("cold start and stream TTFB ...", file=sys.stderr, flush=True)
            raw = statistics.median(raw_start_seconds(procs, server_cpu)
                                    for _ in range(args.cold_samples))
            cold = Row(f"cold start, scaled to zero -> answer, n={args.cold_samples} "
                       "(p99 = max)", target=f"<= {TARGET_COLD_S * 1000:.0f} ms")
            direct_ttfb = StreamClient(replicas[0], "/predict/stream").samples(args.ttfb_samples)
            ttfb_direct = Row(f"stream TTFB direct, n={args.ttfb_samples}",
                              p50=ms(statistics.median(direct_ttfb)),
                              p99=ms(pct(direct_ttfb, 0.99)), target="baseline")
            ttfb_berth = Row(f"stream TTFB berth, n={args.ttfb_samples}",
                             target=f"<= direct + {TARGET_TTFB_ADDED_MS:g} ms")
            if berth is None:
                cold.result = ttfb_berth.result = f"n/a: {why}"
            else:
                fill_cold(cold, berth, args.cold_samples, raw)
                fill_ttfb(ttfb_berth, berth, args.ttfb_samples, statistics.median(direct_ttfb))
                notes += [metrics_note(berth), pinning_note(srv, server_cpu)]
            rows += [cold, ttfb_direct, ttfb_berth]
            notes.append(f"cold start baseline: catalog/echo started by hand -> first answer, "
                         f"median {raw * 1000:.0f} ms ('added vs direct' is against it)")
            if berth is None:
                notes.append(f"berth rows: {why}")
        finally:
            if srv is not None:
                owned = srv.proc is not None and (srv.data_dir / "owner-id").exists()
                leftovers = srv.replica_processes() if owned else []
                srv.stop()
                for proc in leftovers:
                    if proc.is_running():
                        proc.kill()
            procs.stop_all()
    print(render(rows))
    for note in notes:
        print(f"- {note}")
    if args.markdown:
        args.markdown.write_text(markdown(rows, notes))


if __name__ == "__main__":
    main()
