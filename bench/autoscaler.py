"""Autoscaler figures: how fast a load step scales a real deployment, and the cost of one
decision pass over many deployments.

(a) A real `berth serve` on free loopback ports, catalog/echo with ECHO_DELAY_MS=200,
    concurrency target 2, min 1, max 4, cooldown 5, polling 1: 0 -> 8 clients through the
    gateway for --load-seconds, then none. Printed: seconds from the load step to the
    ScaledUp decision (its event) and to the extra replicas ready, against the polling
    interval and a catalog/echo started by hand; requests sent / failed (target 0); and the
    replicas every second while it runs.
(b) One pass of the loop's work for --deployments simulated deployments, in process: build
    each policy (`policy_for`), `decide()` each with 60 s of history (concurrency and request
    rate, one sample a second), and save the 1,000 ScaleRecords in one SQLite transaction
    (`tx.autoscaler.save`, as the loop does). Median ms per pass against the 100 ms target.

Run: python bench/autoscaler.py [--load-seconds 12] [--observe-seconds 32]
                                [--deployments 1000] [--passes 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.control_plane import raw_echo_start
from tests.e2e.harness import Api, BerthServer, wait_for
from tests.e2e.test_autoscaling import Load, autoscaled

from berth.autoscaler.decide import Decision, Observed, Sample, ScaleState, decide
from berth.autoscaler.loop import Polled, record_of
from berth.autoscaler.policy import ScalePolicy, TriggerKind, policy_for
from berth.domain.records import Deployment
from berth.domain.spec import DeploymentSpec
from berth.domain.status import DesiredState
from berth.store.engine import Store

TARGET_MS = 100.0
HISTORY = 60  # samples per source per deployment: a 60 s stable window at one poll a second


# -- (a) a load step on a real server -----------------------------------------------------

@dataclass
class Tick:
    at: float  # seconds since the load step
    loaded: bool
    desired: int
    total: int
    ready: int


def _state(api: Api, name: str) -> tuple[int, int, int]:
    status = api.get(name)["containers"][0]["deploy_status"]
    desired = api.http.get(f"{api.base}/{name}/autoscaler").json()["regions"]
    return (int(desired[0]["desired"]) if desired else 0, int(status["total"]),
            int(status["ready"]))


def load_step(api: Api, gateway: str, load_seconds: float, observe_seconds: float
              ) -> tuple[list[Tick], dict[str, float | None], Load]:
    name = "bench-auto"
    api.task(api.create(autoscaled(name))["task_id"])
    wait_for(lambda: _state(api, name)[2] == 1, 60, 0.1, "1 ready replica")
    ticks: list[Tick] = []
    marks: dict[str, float | None] = {"desired 4 on the view": None, "4 ready": None,
                                      "back to 1": None}
    loaded = threading.Event()
    loaded.set()
    step_wall = time.time()
    step = time.monotonic()
    with Load(f"{gateway}/e2e/{name}/predict", 8) as load:
        next_tick = 0.0
        while time.monotonic() - step < observe_seconds:
            now = time.monotonic() - step
            if loaded.is_set() and now >= load_seconds:
                load.__exit__()  # the load stops; sampling goes on
                loaded.clear()
            desired, total, ready = _state(api, name)
            for key, hit in (("desired 4 on the view", desired == 4), ("4 ready", ready == 4),
                             ("back to 1", not loaded.is_set() and total == 1)):
                if hit and marks[key] is None:
                    marks[key] = now
            if now >= next_tick:
                ticks.append(Tick(round(now), loaded.is_set(), desired, total, ready))
                next_tick += 1.0
            time.sleep(0.1)
    events = api.http.get(f"{api.base}/{name}/events").json()["items"]
    ups = [datetime.fromisoformat(e["at"]).timestamp() - step_wall
           for e in events if e["reason"] == "ScaledUp"]
    marks["ScaledUp event"] = min(ups) if ups else None
    return ticks, marks, load


def run_load_step(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        srv = BerthServer(Path(tmp) / "data").start()
        try:
            with srv.client() as http:
                ticks, marks, load = load_step(Api(http), srv.gateway, args.load_seconds,
                                               args.observe_seconds)
        finally:
            srv.stop()
    raw = statistics.median(raw_echo_start() for _ in range(3))
    print(f"(a) load step 0 -> 8 clients for {args.load_seconds:g} s (catalog/echo "
          "ECHO_DELAY_MS=200, concurrency target 2, min 1, max 4, polling 1, cooldown 5)")
    rows = [
        ("seconds to the scale-up decision (ScaledUp event)", marks["ScaledUp event"],
         "1 s (polling interval)", 1.0),
        ("seconds to desired 4 on the autoscaler view", marks["desired 4 on the view"],
         "1 s (polling interval)", 1.0),
        ("seconds to 4 ready replicas", marks["4 ready"],
         f"{raw:.2f} s (echo started by hand)", raw),
        ("seconds from the load stop to 1 replica",
         None if marks["back to 1"] is None else marks["back to 1"] - args.load_seconds,
         "5 s (cooldown)", 5.0),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'berth':>8}  {'baseline':<30}  ratio")
    for label, value, base, base_s in rows:
        shown = "never" if value is None else f"{value:.2f} s"
        ratio = "-" if value is None else f"{value / base_s:.1f}x"
        print(f"{label:<{width}}  {shown:>8}  {base:<30}  {ratio}")
    print(f"requests sent {load.ok + len(load.failed)}, failed {len(load.failed)} (target 0)")
    for failure in load.failed[:3]:
        print(f"  failed: {failure}")
    print("\n   t  load  desired  total  ready")
    for t in ticks:
        print(f"{t.at:4.0f}  {'on' if t.loaded else 'off':>4}  {t.desired:7d}  {t.total:5d}  "
              f"{t.ready:5d}")


# -- (b) one decision pass over many deployments ------------------------------------------

def _deployments(n: int) -> list[Deployment]:
    spec = DeploymentSpec.model_validate(autoscaled(
        "simulated", cooldown_period=HISTORY,
        triggers={"concurrency": {"target": 2}, "request_rate": {"target": 10}}))
    now = datetime.now(UTC)
    return [Deployment(id=str(uuid.uuid4()), project="bench", name=f"sim-{i:05d}", spec=spec,
                       generation=1, desired=DesiredState.RUNNING, restart_nonce=0,
                       created_at=now, updated_at=now) for i in range(n)]


def _world(n: int, now: float, rng: random.Random
           ) -> list[tuple[Deployment, ScaleState, Observed]]:
    """Each deployment with a steady load of its own and HISTORY seconds of samples."""
    out = []
    for d in _deployments(n):
        load = rng.uniform(0.5, 8.0)  # in flight + waiting, region total
        history = {
            source: tuple(Sample(source, max(0.0, load * scale + rng.gauss(0, 0.3)),
                                 now - HISTORY + k) for k in range(HISTORY))
            for source, scale in ((TriggerKind.CONCURRENCY, 1.0),
                                  (TriggerKind.REQUEST_RATE, 5.0))}
        current = max(1, min(4, round(load / 2)))
        state = ScaleState(history=history, since=now - HISTORY, desired=current,
                           last_scale_at=now - 120)
        observed = Observed(
            current=current, ready=current, inflight=round(load), last_request_at=now - 0.5,
            samples=(Sample(TriggerKind.CONCURRENCY, load, now - 0.2),
                     Sample(TriggerKind.REQUEST_RATE, load * 5, now - 0.2)))
        out.append((d, state, observed))
    return out


def _policies(world: list[tuple[Deployment, ScaleState, Observed]]) -> list[ScalePolicy]:
    return [policy_for(d.spec, d.spec.containers[0]) for d, _, _ in world]


def _decide_all(world: list[tuple[Deployment, ScaleState, Observed]],
                policies: list[ScalePolicy], now: float) -> list[Decision]:
    return [decide(p, o, s, now) for p, (_, s, o) in zip(policies, world, strict=True)]


def _save_all(store: Store, polled: list[Polled], now: float) -> None:
    with store.write(notify=False) as tx:
        tx.autoscaler.save_all(record_of(p, now) for p in polled)


def _ms(fn: Any, passes: int) -> float:
    times = []
    for _ in range(passes):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def run_decision_pass(args: argparse.Namespace) -> None:
    now = time.time()
    world = _world(args.deployments, now, random.Random(17))
    policies = _policies(world)
    decisions = _decide_all(world, policies, now)
    polled = [Polled(d, "local", p, dec, o)
              for (d, _, o), p, dec in zip(world, policies, decisions, strict=True)]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store.migrate()
        try:
            began = time.perf_counter()
            _save_all(store, polled, now)  # the first pass inserts the rows
            first_save = (time.perf_counter() - began) * 1000
            policy_ms = _ms(lambda: _policies(world), args.passes)
            decide_ms = _ms(lambda: _decide_all(world, policies, now), args.passes)
            save_ms = _ms(lambda: _save_all(store, polled, now), args.passes)
        finally:
            store.close()
    n = args.deployments
    print(f"\n(b) one pass over {n} simulated deployments ({HISTORY} s of history, "
          f"2 triggers each), median of {args.passes} passes")
    rows = [("policy_for (each tick)", policy_ms), (f"decide() x {n}", decide_ms),
            (f"save {n} ScaleRecords, one transaction", save_ms),
            ("the pass: policies + decisions + save", policy_ms + decide_ms + save_ms)]
    width = max(len(r[0]) for r in rows)
    print(f"{'step':<{width}}  {'ms':>8}  {'target':>8}  ratio")
    for label, ms in rows:
        print(f"{label:<{width}}  {ms:8.1f}  {TARGET_MS:8.0f}  {ms / TARGET_MS:.2f}x")
    print(f"(first save, inserting the {n} rows: {first_save:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--load-seconds", type=float, default=12.0)
    parser.add_argument("--observe-seconds", type=float, default=32.0)
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--passes", type=int, default=7)
    parser.add_argument("--only", choices=("load", "pass"), default=None)
    args = parser.parse_args()
    if args.observe_seconds > 120 or args.load_seconds > args.observe_seconds:
        parser.error("--observe-seconds is at most 120 and at least --load-seconds")
    if args.only != "pass":
        run_load_step(args)
    if args.only != "load":
        run_decision_pass(args)


if __name__ == "__main__":
    main()
