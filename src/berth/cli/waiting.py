"""Waiting for a change with a spinner that shows the deployment's live status."""

from __future__ import annotations

from berth.api.v1.models import Accepted, TaskOut
from berth.cli import common, render
from berth.client import BerthAPIError, BerthClient
from berth.domain.status import TaskState


def announce(accepted: Accepted, verb: str) -> None:
    d = accepted.deployment
    common.say(f"{d.name}: {verb} (generation {d.generation}), task {accepted.task_id}")


def _describe(client: BerthClient, name: str, task: TaskOut) -> str:
    try:
        deployment = client.get(name)
    except BerthAPIError as exc:
        if exc.status == 404:
            return f"{name}: gone, task {task.state}"
        raise
    return f"{name}: {render.progress(deployment)}"


def wait_for_task(client: BerthClient, accepted: Accepted, timeout: float) -> None:
    """Spin until the change's task ends; exit 1 if it ends in ERROR or times out."""
    name = accepted.deployment.name
    with common.err_console.status(f"{name}: waiting for task {accepted.task_id}") as spinner:

        def on_progress(task: TaskOut) -> None:
            spinner.update(_describe(client, name, task))

        try:
            task = client.wait_task(
                accepted.task_id, timeout=timeout, poll=common.POLL_SECONDS,
                on_progress=on_progress,
            )
        except TimeoutError as exc:
            common.fail(
                str(exc),
                details=[f"the change goes on in the background; see 'berth get {name}'"],
            )
    if task.state is TaskState.ERROR:
        common.fail(f"{name}: task {task.id} failed: {task.error or task.message or 'error'}")
    try:
        deployment = client.get(name)
    except BerthAPIError as exc:
        if exc.status == 404:
            common.say(f"{name}: deleted", style="green")
            return
        raise
    common.say(f"{name}: {render.progress(deployment)}", style="green")
    if deployment.address:
        common.say(f"address: {deployment.address}")
