"""Async requests finished by hand, as the dispatcher would: leased from the queue, the
result object written to the deployment's dataset, the try ended. For tests of what reads
requests and results (the dialects), without a gateway or a replica."""

from __future__ import annotations

import threading
import time

from berth.domain.invocations import InvocationStatus
from berth.invocations import rules
from berth.services.datasets import DatasetService
from berth.services.deployments import DeploymentService
from berth.store.engine import Store
from berth.store.invocations import Ending


def finish(store: Store, deployments: DeploymentService, datasets: DatasetService,
           project: str, name: str, *, status_code: int = 200,
           answer: bytes = b'{"ok": true}', limit: int = 100,
           now: float | None = None) -> list[str]:
    """Lease the deployment's due requests and end each with `answer` as its result
    object: 2xx SUCCEEDED, anything else FAILED. Returns the ids ended."""
    at = time.time() if now is None else now
    d = deployments.get(project, name)
    cfg = d.spec.async_
    with store.write(notify=False) as tx:
        held = tx.invocations.lease(d.id, limit, at, "test-dispatcher", 60.0)
        ds = datasets.ensure(tx, project, rules.dataset_name(cfg))
    files = datasets.files(ds)
    ok = 200 <= status_code < 300
    endings = []
    for h in held:
        path = rules.result_path(cfg, d.name, h.id)
        files.write(path, answer)
        endings.append(Ending(
            h.id, h.token, InvocationStatus.SUCCEEDED if ok else InvocationStatus.FAILED,
            at, reason=f"the replica answered {status_code}", status_code=status_code,
            error=None if ok else f"the replica answered {status_code}", dataset=ds.name,
            result_path=path, result_size=len(answer), expires_at=at + h.result_ttl))
    with store.write(notify=False) as tx:
        done = tx.invocations.end(endings)
    return [h.id for h in held if h.id in done]


class Finisher(threading.Thread):
    """Finishes the first request that arrives (see `finish`), in the background: for a
    caller that submits and then waits for the result in one call."""

    def __init__(self, store: Store, deployments: DeploymentService, datasets: DatasetService,
                 project: str, name: str, *, status_code: int = 200,
                 answer: bytes = b'{"ok": true}', give_up_after: float = 30.0) -> None:
        super().__init__(daemon=True)
        self.args_ = (store, deployments, datasets, project, name)
        self.status_code, self.answer = status_code, answer
        self.give_up_after = give_up_after
        self.finished: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.give_up_after
        while not self.finished and not self.stop.is_set() and time.monotonic() < deadline:
            self.finished = finish(*self.args_, status_code=self.status_code,
                                   answer=self.answer)
            self.stop.wait(0.02)
