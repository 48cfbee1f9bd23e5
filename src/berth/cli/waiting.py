"""Waiting for a change with a spinner that shows the deployment's live status."""

from __future__ import annotations

from berth.api.v1.models import Accepted, TaskOut
from berth.cli import common, render
from berth.client import BerthAPIError, BerthClient
from berth.domain.status import DeploymentStatus, TaskState


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
    """Spin until the change's task ends, then show the deployment and its address;
    exit 1 if the task ends in ERROR or the wait times out."""
    name = accepted.deployment.name
    task_ended(client, accepted, timeout)
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


def wait_for_delete(client: BerthClient, accepted: Accepted, timeout: float) -> None:
    """Spin until the delete task ends; say what was deleted, or exit 1 if it is still there."""
    d = accepted.deployment
    task = task_ended(client, accepted, timeout)
    try:
        after = client.get(d.name)
    except BerthAPIError as exc:
        if exc.status != 404:
            raise
    else:
        if after.id == d.id and after.status != DeploymentStatus.DELETED:
            common.fail(f"{d.name}: task {task.id} is {task.state}, but the deployment is "
                        f"still {render.progress(after)}")
    common.say(f"{d.name}: deleted (id {d.id}), task {task.id} {task.state}", style="green")


def task_ended(client: BerthClient, accepted: Accepted, timeout: float) -> TaskOut:
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
    return task
