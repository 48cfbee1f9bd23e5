"""Async queue figures, on a real `berth serve` (SQLite, loopback, catalog/echo with no delay).

(a) Intake: wrk POSTs small JSON bodies to `{gateway}/async/predict` of a stopped deployment
    (nothing is dispatched: the rate is the intake's alone) for --seconds with
    --connections keep-alive connections. Each 202 is answered only after its request is
    committed (group commits). Against: the same wrk load sent synchronously to a running
    deployment through the same gateway (its /predict). Target: >= 2,000 accepted/s.
(b) End to end: --requests async requests submitted at once to a running deployment with
    `workers` = --workers, timed until every one is SUCCEEDED with its result object
    written. Against: the same number of requests sent synchronously by --workers clients
    (one at a time each) through the gateway: the queue's overhead per request is the
    difference of the two per-request times.

The server runs pinned to CPU 0 and wrk and this script's clients to CPU 1 where the machine
has two. Run: python bench/async_queue.py [--seconds 5] [--connections 64] [--requests 2000]
                                          [--workers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._load import affinity, ensure_tools, run_wrk, wrk_script
from tests.e2e.harness import Api, BerthServer, echo_spec, wait_for

TARGET_INTAKE = 2000.0


def count_rows(srv: BerthServer, name: str, status: str | None = None) -> int:
    import sqlite3
    db = sqlite3.connect(srv.data_dir / "berth.db")
    try:
        query = ("SELECT count(*) FROM invocations i JOIN deployments d ON d.id = i.deployment_id"
                 " WHERE d.name = ?")
        args: list[Any] = [name]
        if status:
            query += " AND i.status = ?"
            args.append(status)
        return int(db.execute(query, args).fetchone()[0])
    finally:
        db.close()


async def post_all(url: str, n: int, concurrency: int, expect: int) -> float:
    """Seconds to POST `n` requests with `concurrency` clients, each answered `expect`."""
    left = list(range(n))
    async with httpx.AsyncClient(timeout=30) as client:
        async def one() -> None:
            while left:
                i = left.pop()
                r = await client.post(url, json={"inputs": i})
                assert r.status_code == expect, r.text
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(concurrency)))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    tools = ensure_tools({"wrk": "wrk"})
    two = (os.cpu_count() or 1) >= 2
    server_cpu, client_cpu = (0, 1) if two else (None, None)
    with tempfile.TemporaryDirectory() as tmp:
        with affinity(server_cpu):
            srv = BerthServer(Path(tmp) / "data").start()
        try:
            with srv.client() as http:
                api = Api(http)
                cfg = {"async": {"enabled": True, "workers": args.workers,
                                 "max_backlog": 10_000_000}}
                api.task(api.create(echo_spec("intake", 1, **cfg))["task_id"])
                api.task(api.act("intake", "stop"))
                api.task(api.create(echo_spec("e2e-run", 1, **cfg))["task_id"])
            script = wrk_script(Path(tmp) / "post.lua")
            with affinity(client_cpu):
                run_wrk(tools["wrk"], f"{srv.gateway}/e2e/intake/async/predict", script,
                        args.connections, 1, client_cpu)  # warm-up
                before = count_rows(srv, "intake")
                intake = run_wrk(tools["wrk"], f"{srv.gateway}/e2e/intake/async/predict",
                                 script, args.connections, args.seconds, client_cpu)
                stored = count_rows(srv, "intake") - before
                sync = run_wrk(tools["wrk"], f"{srv.gateway}/e2e/e2e-run/predict", script,
                               args.connections, args.seconds, client_cpu)
                url = f"{srv.gateway}/e2e/e2e-run"
                asyncio.run(post_all(f"{url}/predict", 200, args.workers, 200))  # warm-up
                sync_s = asyncio.run(post_all(f"{url}/predict", args.requests, args.workers,
                                                200))
                started = time.perf_counter()
                submit_s = asyncio.run(post_all(f"{url}/async/predict", args.requests, 16, 202))
                wait_for(lambda: count_rows(srv, "e2e-run", "SUCCEEDED") >= args.requests,
                         600, 0.05, what="every async request to succeed")
                e2e_s = time.perf_counter() - started
        finally:
            srv.stop()
    print(f"\nAsync queue on SQLite, {os.cpu_count()} cores "
          f"(server on CPU {server_cpu}, clients on CPU {client_cpu})\n")
    print("(a) intake, wrk -c", args.connections, f"for {args.seconds}s")
    print(f"{'load':<46} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    print(f"{'async intake: 202 once committed':<46} {intake.rps:>9.0f} "
          f"{intake.p50_ms:>8.2f} {intake.p99_ms:>8.2f} {intake.errors:>7}")
    print(f"{'sync /predict through the gateway (baseline)':<46} {sync.rps:>9.0f} "
          f"{sync.p50_ms:>8.2f} {sync.p99_ms:>8.2f} {sync.errors:>7}")
    print(f"rows stored {stored} for {intake.requests} answered; intake / sync = "
          f"{intake.rps / sync.rps:.2f}; target >= {TARGET_INTAKE:.0f}/s: "
          f"{'met' if intake.rps >= TARGET_INTAKE else 'NOT met'}")
    n = args.requests
    print(f"\n(b) end to end, {n} requests, workers = {args.workers}")
    print(f"{'path':<46} {'seconds':>9} {'req/s':>9} {'ms/req':>8}")
    print(f"{'sync, ' + str(args.workers) + ' clients one at a time (baseline)':<46} "
          f"{sync_s:>9.2f} {n / sync_s:>9.0f} {sync_s / n * 1000:>8.3f}")
    print(f"{'async: submit all, until all SUCCEEDED':<46} {e2e_s:>9.2f} {n / e2e_s:>9.0f} "
          f"{e2e_s / n * 1000:>8.3f}")
    print(f"{'  of which submitting (16 clients)':<46} {submit_s:>9.2f} {n / submit_s:>9.0f}")
    print(f"queue overhead per request: {(e2e_s - sync_s) / n * 1000:+.3f} ms "
          f"(async / sync time = {e2e_s / sync_s:.2f})")


if __name__ == "__main__":
    main()
